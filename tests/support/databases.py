"""Scratch databases on the test server, and rows written straight into them."""

from __future__ import annotations

from typing import Any

import psycopg

from groundwire.embedded import EmbeddedPostgres
from services.vectors import partition_ddl


def empty_database(postgres: EmbeddedPostgres, name: str) -> str:
    """Creates (or re-creates) an empty database on the test server; returns its URL."""
    with psycopg.connect(postgres.server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name))
        )
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return str(postgres.server.get_uri(name))


def add_collection(conn: psycopg.Connection[Any], name: str, embedder: str, bulk: bool) -> int:
    """Inserts a collection row (`hash:<n>` embedder), in the default workspace and with its
    partition of chunks where the schema has them; returns its id."""
    has_workspaces = conn.execute(
        "SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'collections' AND column_name = 'workspace_id'"
    ).fetchone()
    columns, values = "", ""
    if has_workspaces:
        columns, values = ", workspace_id", ", (SELECT id FROM workspaces WHERE name = 'default')"
    row = conn.execute(
        "INSERT INTO collections (name, embedder, dimensions, max_input_tokens,"
        f" chunk_tokens, chunk_overlap, threshold, language, bulk_load{columns})"
        f" VALUES (%s, %s, %s, 100, 50, 0, 0.3, 'english', %s{values}) RETURNING id",
        [name, embedder, int(embedder.partition(":")[2] or 256), bulk],
    ).fetchone()
    assert row is not None
    partitioned = conn.execute(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'chunks'::regclass"
    ).fetchone()
    if partitioned:
        conn.execute(partition_ddl(int(row[0])))
    return int(row[0])


def add_document(conn: psycopg.Connection[Any], collection: int, content: str) -> int:
    """Inserts a finished document row; returns its id."""
    row = conn.execute(
        "INSERT INTO documents (collection_id, external_id, content, content_hash,"
        " metadata, version, status, attempts, chunk_count, token_count,"
        " embedded_chunks, cached_chunks, embedded_tokens)"
        " VALUES (%s, 'd', %s, 'h', '{}', 1, 'done', 0, 0, 0, 0, 0, 0) RETURNING id",
        [collection, content],
    ).fetchone()
    assert row is not None
    return int(row[0])
