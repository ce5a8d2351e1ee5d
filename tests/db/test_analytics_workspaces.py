"""Analysts per workspace: a role granted workspace A counts zero rows of workspace B in every
analytics view, and the views are security barriers (a function of the analyst's, however
cheap, never sees a row it filters out)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from groundwire import migrate
from groundwire.analytics import UnknownWorkspace, grant
from groundwire.embedded import EmbeddedPostgres
from tests.support.databases import empty_database

VIEWS = (
    "documents", "ingest_daily", "embedding_requests", "embedding_cost_daily", "failures",
    "queries", "queries_daily", "knowledge_gaps", "audit", "migrations",
)  # fmt: skip

pytestmark = pytest.mark.slow  # a scratch database, roles and a barrier check: several seconds


def fill(conn: psycopg.Connection[Any], workspace: str) -> None:
    """A workspace with a collection `shared` (the same name in both), a failed document,
    an embedding request, an unanswered query and an audit entry."""
    (ws,) = conn.execute(
        "INSERT INTO workspaces (name) VALUES (%s) RETURNING id", [workspace]
    ).fetchone() or (None,)
    (cid,) = conn.execute(
        "INSERT INTO collections (workspace_id, name, embedder, dimensions, max_input_tokens,"
        " chunk_tokens, chunk_overlap, threshold, language, bulk_load)"
        " VALUES (%s, 'shared', 'hash', 256, 100, 50, 0, 0.3, 'english', false) RETURNING id",
        [ws],
    ).fetchone() or (None,)
    conn.execute(
        "INSERT INTO documents (collection_id, external_id, content, content_hash, metadata,"
        " version, status, error, error_class, attempts, chunk_count, token_count,"
        " embedded_chunks, cached_chunks, embedded_tokens, finished_at)"
        " VALUES (%s, %s, 'x', 'h', '{}', 1, 'failed', 'boom', 'parse', 1, 0, 0, 0, 0, 0, now())",
        [cid, f"doc-of-{workspace}"],
    )
    conn.execute(
        "INSERT INTO embedding_requests (batch_id, collection_id, space, inputs, tokens,"
        " attempts, rate_limited, latency_ms, outcome) VALUES (%s, %s, 'hash:v1:256', 1, 3, 1,"
        " 0, 1.0, 'ok')",
        [uuid.uuid4(), cid],
    )
    conn.execute(
        "INSERT INTO space_migrations (collection_id, status, embedder, dimensions,"
        " max_input_tokens, chunk_tokens, chunk_overlap, space, old_embedder, old_dimensions,"
        " old_max_input_tokens, old_chunk_tokens, old_chunk_overlap, old_space, old_threshold)"
        " VALUES (%s, 'failed', 'hash:128', 128, 100, 40, 0, 'hash:v1:128', 'hash', 256, 100,"
        " 50, 0, 'hash:v1:256', 0.3)",
        [cid],
    )
    conn.execute(
        "INSERT INTO query_log (collection_id, endpoint, query_text, query_hash, mode, k,"
        " threshold, grounded, results, latency_ms)"
        " VALUES (%s, 'query', %s, %s, 'hybrid', 5, 0.3, false, 0, 2.0)",
        [cid, f"question of {workspace}", uuid.uuid4().hex],
    )
    conn.execute(
        "INSERT INTO audit_log (workspace_id, key_name, method, path, action, collection,"
        " status, outcome) VALUES (%s, 'k', 'POST', '/v1/collections', 'POST /v1/collections',"
        " 'shared', 201, 'ok')",
        [ws],
    )


@pytest.fixture(scope="module")
def database(postgres: EmbeddedPostgres) -> str:
    url = empty_database(postgres, "analytics_workspaces")
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        fill(conn, "wa")
        fill(conn, "wb")
    return url


def as_role(postgres: EmbeddedPostgres, role: str) -> str:
    return str(postgres.server.get_postmaster_info().get_uri(role, "analytics_workspaces"))


def counts(url: str) -> dict[str, dict[str, int]]:
    """Rows per view and workspace, as the role of `url` sees them."""
    seen: dict[str, dict[str, int]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for view in VIEWS:
            rows = conn.execute(
                f"SELECT workspace, count(*) FROM analytics.{view} GROUP BY workspace"
            ).fetchall()
            seen[view] = {str(w): int(n) for w, n in rows}
    return seen


def test_a_workspace_role_sees_only_its_workspace(
    postgres: EmbeddedPostgres, database: str
) -> None:
    suffix = uuid.uuid4().hex[:6]
    only_a, everything = f"analyst_a_{suffix}", f"analyst_all_{suffix}"
    grant(database, only_a, create=True, workspace="wa")
    grant(database, everything, create=True)
    mine = counts(as_role(postgres, only_a))
    assert all(set(found) == {"wa"} for found in mine.values()), mine
    assert all(found["wa"] >= 1 for found in mine.values()), mine
    full = counts(as_role(postgres, everything))
    assert all(set(found) == {"wa", "wb"} for found in full.values()), full
    # Two workspaces' collections of one name never merge in the daily aggregates.
    assert full["ingest_daily"] == {"wa": 1, "wb": 1}
    with pytest.raises(UnknownWorkspace):
        grant(database, only_a, workspace="no-such-workspace")


def test_the_views_are_security_barriers(postgres: EmbeddedPostgres, database: str) -> None:
    role = f"analyst_peek_{uuid.uuid4().hex[:6]}"
    grant(database, role, create=True, workspace="wa")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {role} AUTHORIZATION {role}".encode())
    seen: list[str] = []
    with psycopg.connect(as_role(postgres, role), autocommit=True) as conn:
        conn.add_notice_handler(lambda notice: seen.append(str(notice.message_primary)))
        # Cheaper than any filter: without the barrier the planner would run it first.
        conn.execute(
            f"CREATE FUNCTION {role}.peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001"
            " AS $$ BEGIN RAISE NOTICE 'saw %', $1; RETURN true; END $$".encode()
        )
        rows = conn.execute(
            f"SELECT external_id FROM analytics.documents WHERE {role}.peek(external_id)".encode()
        ).fetchall()
    assert [r[0] for r in rows] == ["doc-of-wa"]
    assert seen == ["saw doc-of-wa"], seen
