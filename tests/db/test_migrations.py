"""Migrations build the schema on an empty database and take it all down again."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from groundwire import migrate
from tests.support.databases import add_collection, add_document, empty_database

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
    "document_events",
    "webhooks",
    "webhook_deliveries",
    "webhook_attempts",
    "space_migrations",
    "space_documents",
    "embedding_prices",
    "workspaces",
    "api_keys",
    "originals",
    "original_parts",
    "audit_log",
    "analytics_access",
}

# Scratch databases migrated up and down, data and all: several seconds.
pytestmark = pytest.mark.slow


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows} - {"alembic_version"}


def test_upgrade_downgrade_upgrade_on_empty_database(postgres: Any) -> None:
    url = empty_database(postgres, "migrations_check")

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


def test_text_search_trigger_and_its_downgrade_keep_every_vector(postgres: Any) -> None:
    url = empty_database(postgres, "migrations_tsv")
    migrate.upgrade(url)

    def chunk(conn: psycopg.Connection[Any], collection: int, document: int, text: str) -> None:
        conn.execute(
            "INSERT INTO chunks (collection_id, document_id, doc_version, ordinal, text,"
            " char_start, char_end, token_count, content_hash, embedding)"
            " VALUES (%s, %s, 1, (SELECT count(*) FROM chunks WHERE document_id = %s), %s,"
            " 0, 1, 1, 'h', '[1,0,0]')",
            [collection, document, document, text],
        )

    with psycopg.connect(url) as conn:
        ids = []
        for name, bulk in (("live", False), ("bulk", True)):
            cid = add_collection(conn, name, "hash:3", bulk)
            doc = add_document(conn, cid, "x")
            chunk(conn, cid, doc, "Running dogs")
            ids.append((cid, doc))
        rows = conn.execute("SELECT collection_id, tsv::text FROM chunks ORDER BY id").fetchall()
        # Computed as written, except in bulk-load mode (computed when the mode is left).
        assert rows == [(ids[0][0], "'dog':2 'run':1"), (ids[1][0], None)]

    # Going back to the generated column computes every vector, deferred ones included.
    migrate.downgrade(url, "0007_analytics")
    with psycopg.connect(url) as conn:
        assert [r[0] for r in conn.execute("SELECT tsv::text FROM chunks ORDER BY id")] == [
            "'dog':2 'run':1",
            "'dog':2 'run':1",
        ]
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        chunk(conn, ids[0][0], ids[0][1], "Barking cats")
        last = conn.execute("SELECT tsv::text FROM chunks ORDER BY id DESC LIMIT 1").fetchone()
        assert last == ("'bark':1 'cat':2",)


def test_text_is_stored_without_pglz_and_the_downgrade_restores_it(postgres: Any) -> None:
    url = empty_database(postgres, "migrations_storage")
    migrate.upgrade(url)
    passage = " ".join(f"word{i % 50}" for i in range(300))  # ~2 kB, compresses well
    vector = "[" + ",".join(["0.5"] * 256) + "]"

    def write(conn: psycopg.Connection[Any], name: str) -> tuple[str | None, str | None]:
        """Stores a document and one chunk; returns how their text was compressed."""
        cid = add_collection(conn, name, "hash", False)
        doc = add_document(conn, cid, passage * 20)
        conn.execute(
            "INSERT INTO chunks (collection_id, document_id, doc_version, ordinal, text,"
            " char_start, char_end, token_count, content_hash, embedding)"
            " VALUES (%s, %s, 1, 0, %s, 0, 1, 1, 'h', %s)",
            [cid, doc, passage, vector],
        )
        row = conn.execute(
            "SELECT pg_column_compression(c.text), pg_column_compression(d.content)"
            " FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.id = %s",
            [doc],
        ).fetchone()
        assert row is not None
        return row[0], row[1]

    with psycopg.connect(url) as conn:
        chunk_text, content = write(conn, "now")
        assert chunk_text is None  # inline, as it is
        assert content in (None, "lz4")
        assert conn.execute("SELECT text FROM chunks").fetchone() == (passage,)
    migrate.downgrade(url, "0008_deferred_text_search")
    with psycopg.connect(url) as conn:
        assert write(conn, "before") == ("pglz", "pglz")
