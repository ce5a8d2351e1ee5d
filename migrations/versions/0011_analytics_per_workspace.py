"""Analytics per workspace: every view gains a `workspace` column and shows a role only the
rows of the workspaces it was granted; `analytics.audit` shows the audit trail.

The views stay security-barrier views owned by the migrating role (they read the tables
with its rights); each filters on the querying role (`current_user`) through
`analytics_access`, which `groundwire analytics grant ROLE [--workspace W]` fills: a row with
a workspace shows that workspace, a row without one shows all. A role with no row (the owner,
a superuser, or a role granted before workspaces existed) sees everything, as before.
Aggregates group by workspace too, so equal collection names of two workspaces never merge.

Revision ID: 0011_analytics_per_workspace
Revises: 0010_identity
Create Date: 2026-12-01
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.embedding.requests import RequestOutcome
from services.statuses import PENDING, DocumentStatus, sql_list

revision: str = "0011_analytics_per_workspace"
down_revision: str | None = "0010_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Whether the querying role may see the rows of workspace `{ws}`. Uncorrelated but for
# `{ws}`: the subqueries run once per query.
VISIBLE = """(
    NOT EXISTS (SELECT 1 FROM public.analytics_access a WHERE a.role = current_user)
    OR EXISTS (SELECT 1 FROM public.analytics_access a
               WHERE a.role = current_user AND a.workspace_id IS NULL)
    OR {ws} = ANY (ARRAY(SELECT a.workspace_id FROM public.analytics_access a
                         WHERE a.role = current_user AND a.workspace_id IS NOT NULL))
)"""

STATUSES = {
    "done": sql_list([DocumentStatus.DONE]),
    "failed": sql_list([DocumentStatus.FAILED]),
    "pending": sql_list(list(PENDING)),
    "request_failed": sql_list([RequestOutcome.FAILED]),
}

# In dependency order: views built on other views come after them.
VIEWS = {
    "documents": """
        SELECT d.id AS document_id, c.name AS collection, d.external_id, d.title, d.source,
               d.content_type, d.status, d.version, d.indexed_version, d.error_class, d.error,
               d.attempts, d.chunk_count AS chunks, d.token_count AS tokens,
               d.embedded_chunks, d.cached_chunks, d.embedded_tokens,
               d.accepted_at, d.started_at, d.embedded_at, d.finished_at,
               extract(epoch FROM d.started_at - d.accepted_at)::float8 AS wait_seconds,
               extract(epoch FROM d.embedded_at - d.started_at)::float8 AS embed_seconds,
               extract(epoch FROM d.finished_at - d.embedded_at)::float8 AS write_seconds,
               CASE WHEN d.status = {done}
                    THEN extract(epoch FROM d.finished_at - d.accepted_at)::float8
               END AS seconds_to_searchable,
               w.name AS workspace
        FROM public.documents d
        JOIN public.collections c ON c.id = d.collection_id
        JOIN public.workspaces w ON w.id = c.workspace_id
        WHERE {visible_c}
    """,
    "ingest_daily": """
        SELECT collection, accepted_at::date AS day,
               count(*) AS documents,
               count(*) FILTER (WHERE status = {done}) AS done,
               count(*) FILTER (WHERE status = {failed}) AS failed,
               count(*) FILTER (WHERE status IN ({pending})) AS pending,
               coalesce(sum(chunks) FILTER (WHERE status = {done}), 0) AS chunks,
               coalesce(sum(tokens) FILTER (WHERE status = {done}), 0) AS tokens,
               coalesce(sum(embedded_tokens) FILTER (WHERE status = {done}), 0)
                   AS embedded_tokens,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_to_searchable)
                   AS p50_seconds_to_searchable,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds_to_searchable)
                   AS p95_seconds_to_searchable,
               workspace
        FROM analytics.documents
        GROUP BY workspace, collection, accepted_at::date
    """,
    "embedding_requests": """
        SELECT r.id AS request_id, r.at, c.name AS collection, r.batch_id, r.space,
               split_part(r.space, ':', 1) AS provider, split_part(r.space, ':', 2) AS model,
               r.inputs, r.tokens, r.attempts, r.rate_limited, r.latency_ms, r.outcome, r.error,
               w.name AS workspace
        FROM public.embedding_requests r
        JOIN public.collections c ON c.id = r.collection_id
        JOIN public.workspaces w ON w.id = c.workspace_id
        WHERE {visible_c}
    """,
    "embedding_cost_daily": """
        SELECT r.at::date AS day, r.collection, r.provider, r.model,
               count(*) AS requests,
               count(*) FILTER (WHERE r.outcome = {request_failed}) AS failed_requests,
               coalesce(sum(r.rate_limited), 0) AS rate_limited,
               coalesce(sum(r.inputs) FILTER (WHERE r.outcome <> {request_failed}), 0) AS inputs,
               coalesce(sum(r.tokens) FILTER (WHERE r.outcome <> {request_failed}), 0) AS tokens,
               p.usd_per_million_tokens,
               coalesce(sum(r.tokens) FILTER (WHERE r.outcome <> {request_failed}), 0)
                   * p.usd_per_million_tokens / 1000000 AS estimated_cost_usd,
               r.workspace
        FROM analytics.embedding_requests r
        LEFT JOIN public.embedding_prices p ON p.provider = r.provider AND p.model = r.model
        GROUP BY r.workspace, r.at::date, r.collection, r.provider, r.model,
                 p.usd_per_million_tokens
    """,
    "failures": """
        SELECT collection, coalesce(error_class, 'unclassified') AS reason_class,
               count(*) AS documents, max(finished_at) AS last_failed_at,
               (array_agg(error ORDER BY finished_at DESC NULLS LAST))[1] AS latest_error,
               workspace
        FROM analytics.documents
        WHERE status = {failed}
        GROUP BY workspace, collection, coalesce(error_class, 'unclassified')
    """,
    "queries": """
        SELECT q.id AS query_id, q.at, c.name AS collection, q.endpoint, q.query_text,
               q.query_hash, q.mode, q.k, q.filter, q.best_score, q.threshold, q.grounded,
               q.results, q.latency_ms, w.name AS workspace
        FROM public.query_log q
        JOIN public.collections c ON c.id = q.collection_id
        JOIN public.workspaces w ON w.id = c.workspace_id
        WHERE {visible_c}
    """,
    "queries_daily": """
        SELECT collection, at::date AS day, count(*) AS queries,
               count(*) FILTER (WHERE grounded) AS grounded,
               round(avg(grounded::int), 4)::float8 AS grounded_rate,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency_ms,
               avg(best_score)::float8 AS mean_best_score,
               workspace
        FROM analytics.queries
        GROUP BY workspace, collection, at::date
    """,
    "knowledge_gaps": """
        SELECT collection, query_hash,
               (array_agg(query_text ORDER BY at DESC))[1] AS question,
               count(*) AS times_asked, max(at) AS last_asked,
               max(best_score) AS best_score_seen, max(threshold) AS threshold,
               workspace
        FROM analytics.queries
        WHERE NOT grounded AND query_hash IS NOT NULL
        GROUP BY workspace, collection, query_hash
    """,
    "audit": """
        SELECT a.id AS audit_id, a.at, w.name AS workspace, a.key_id, a.key_name, a.method,
               a.path, a.action, a.collection, a.document_ids, a.status, a.outcome
        FROM public.audit_log a
        LEFT JOIN public.workspaces w ON w.id = a.workspace_id
        WHERE {visible_a}
    """,
}
REPLACED = [name for name in VIEWS if name != "audit"]
_BEFORE = importlib.import_module("migrations.versions.0007_analytics")


def upgrade() -> None:
    op.create_table(
        "analytics_access",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "workspace_id",
            sa.BigInteger,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        ),
        sa.UniqueConstraint("role", "workspace_id", name="analytics_access_role_workspace"),
    )
    for name in reversed(REPLACED):
        op.execute(f"DROP VIEW analytics.{name}")
    values = {
        **STATUSES,
        "visible_c": VISIBLE.format(ws="c.workspace_id"),
        "visible_a": VISIBLE.format(ws="a.workspace_id"),
    }
    for name, body in VIEWS.items():
        op.execute(
            f"CREATE VIEW analytics.{name} WITH (security_barrier = true)"
            f" AS {body.format(**values)}"
        )


def downgrade() -> None:
    op.execute("DROP VIEW analytics.audit")
    for name in reversed(REPLACED):
        op.execute(f"DROP VIEW analytics.{name}")
    views = _views_0007()
    for name, body in views.items():
        op.execute(f"CREATE VIEW analytics.{name} AS {body}")
    op.drop_table("analytics_access")


def _views_0007() -> dict[str, str]:
    """The views as migration 0007 made them."""
    return {name: body.format(**_BEFORE.STATUSES) for name, body in _BEFORE.VIEWS.items()}
