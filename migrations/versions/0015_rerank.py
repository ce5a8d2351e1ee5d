"""Reranking: a collection's default (`rerank`), and the query log's record of whether each
request was reranked (NULL: not asked; false: the reranker failed or ran out of time), shown
to analysts as the last column of `analytics.queries`.

Revision ID: 0015_rerank
Revises: 0014_answers
Create Date: 2026-12-02
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_rerank"
down_revision: str | None = "0014_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_0011 = importlib.import_module("migrations.versions.0011_analytics_per_workspace")
_VISIBLE_C = _0011.VISIBLE.format(ws="c.workspace_id")
QUERIES = """
    SELECT q.id AS query_id, q.at, c.name AS collection, q.endpoint, q.query_text,
           q.query_hash, q.mode, q.k, q.filter, q.best_score, q.threshold, q.grounded,
           q.results, q.latency_ms, w.name AS workspace, q.reranked
    FROM public.query_log q
    JOIN public.collections c ON c.id = q.collection_id
    JOIN public.workspaces w ON w.id = c.workspace_id
    WHERE {visible_c}
"""
# The views over analytics.queries, rebuilt when a downgrade takes its column away.
DEPENDENT = ("queries_daily", "knowledge_gaps")


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("rerank", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.add_column("query_log", sa.Column("reranked", sa.Boolean, nullable=True))
    # A column added at the end: the view is replaced in place, its dependents stand.
    op.execute(
        "CREATE OR REPLACE VIEW analytics.queries WITH (security_barrier = true)"
        f" AS {QUERIES.format(visible_c=_VISIBLE_C)}"
    )


def downgrade() -> None:
    for name in DEPENDENT:
        op.execute(f"DROP VIEW analytics.{name}")
    op.execute("DROP VIEW analytics.queries")
    for name in ("queries", *DEPENDENT):
        op.execute(
            f"CREATE VIEW analytics.{name} WITH (security_barrier = true)"
            f" AS {_0011.VIEWS[name].format(visible_c=_VISIBLE_C)}"
        )
    op.drop_column("query_log", "reranked")
    op.drop_column("collections", "rerank")
