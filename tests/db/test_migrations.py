"""Migrations build the schema on an empty database and take it all down again."""

from __future__ import annotations

from typing import Any

import psycopg

from services import migrate

TABLES = {
    "collections",
    "documents",
    "chunks",
    "embedding_cache",
    "ingest_batches",
    "batch_items",
    "embedding_usage",
    "embedding_requests",
    "query_log",
    "embedding_prices",
}


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows} - {"alembic_version"}


def test_upgrade_downgrade_upgrade_on_empty_database(postgres: Any) -> None:
    admin = postgres.server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS migrations_check")
        conn.execute("CREATE DATABASE migrations_check")
    url = postgres.server.get_uri("migrations_check")

    migrate.upgrade(url)
    assert tables(url) == TABLES
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()

    migrate.downgrade(url, "base")
    assert tables(url) == set()
    with psycopg.connect(url) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None
        )

    migrate.upgrade(url)
    assert tables(url) == TABLES
