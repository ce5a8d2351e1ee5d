"""Analytics: a query log, an editable price table, and the `analytics` schema of views.

Views are the stable surface analysts query; a change that breaks a column is a new migration
with a note in docs/analytics.md.

Revision ID: 0007_analytics
Revises: 0006_pipeline_stages
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.embedding.requests import RequestOutcome
from services.statuses import PENDING, DocumentStatus, sql_list

revision: str = "0007_analytics"
down_revision: str | None = "0006_pipeline_stages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Status values in the views' text, written from the enums Python uses.
STATUSES = {
    "done": sql_list([DocumentStatus.DONE]),
    "failed": sql_list([DocumentStatus.FAILED]),
    "pending": sql_list(list(PENDING)),
    "request_failed": sql_list([RequestOutcome.FAILED]),
}

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
               END AS seconds_to_searchable
        FROM public.documents d JOIN public.collections c ON c.id = d.collection_id
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
                   AS p95_seconds_to_searchable
        FROM analytics.documents
        GROUP BY collection, accepted_at::date
    """,
    "embedding_requests": """
        SELECT r.id AS request_id, r.at, c.name AS collection, r.batch_id, r.space,
               split_part(r.space, ':', 1) AS provider, split_part(r.space, ':', 2) AS model,
               r.inputs, r.tokens, r.attempts, r.rate_limited, r.latency_ms, r.outcome, r.error
        FROM public.embedding_requests r
        LEFT JOIN public.collections c ON c.id = r.collection_id
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
                   * p.usd_per_million_tokens / 1000000 AS estimated_cost_usd
        FROM analytics.embedding_requests r
        LEFT JOIN public.embedding_prices p ON p.provider = r.provider AND p.model = r.model
        GROUP BY r.at::date, r.collection, r.provider, r.model, p.usd_per_million_tokens
    """,
    "failures": """
        SELECT collection, coalesce(error_class, 'unclassified') AS reason_class,
               count(*) AS documents, max(finished_at) AS last_failed_at,
               (array_agg(error ORDER BY finished_at DESC NULLS LAST))[1] AS latest_error
        FROM analytics.documents
        WHERE status = {failed}
        GROUP BY collection, coalesce(error_class, 'unclassified')
    """,
    "queries": """
        SELECT q.id AS query_id, q.at, c.name AS collection, q.endpoint, q.query_text,
               q.query_hash, q.mode, q.k, q.filter, q.best_score, q.threshold, q.grounded,
               q.results, q.latency_ms
        FROM public.query_log q LEFT JOIN public.collections c ON c.id = q.collection_id
    """,
    "queries_daily": """
        SELECT collection, at::date AS day, count(*) AS queries,
               count(*) FILTER (WHERE grounded) AS grounded,
               round(avg(grounded::int), 4)::float8 AS grounded_rate,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency_ms,
               avg(best_score)::float8 AS mean_best_score
        FROM analytics.queries
        GROUP BY collection, at::date
    """,
    "knowledge_gaps": """
        SELECT collection, query_hash,
               (array_agg(query_text ORDER BY at DESC))[1] AS question,
               count(*) AS times_asked, max(at) AS last_asked,
               max(best_score) AS best_score_seen, max(threshold) AS threshold
        FROM analytics.queries
        WHERE NOT grounded AND query_hash IS NOT NULL
        GROUP BY collection, query_hash
    """,
}

PRICES = [
    ("openai", "text-embedding-3-small", 0.02),
    ("openai", "text-embedding-3-large", 0.13),
    ("openai", "text-embedding-ada-002", 0.10),
    ("local", "all-MiniLM-L6-v2-int8", 0.0),
    ("hash", "v1", 0.0),
]


def upgrade() -> None:
    op.create_table(
        "query_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.Column("collection_id", sa.BigInteger, nullable=False),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("query_text", sa.Text),
        sa.Column("query_hash", sa.Text),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("filter", JSONB),
        sa.Column("best_score", sa.Float),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("grounded", sa.Boolean, nullable=False),
        sa.Column("results", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("query_log_collection_at", "query_log", ["collection_id", "at"])
    op.create_table(
        "embedding_prices",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("usd_per_million_tokens", sa.Numeric(12, 6), nullable=False),
    )
    op.bulk_insert(
        sa.table(
            "embedding_prices",
            sa.column("provider", sa.Text),
            sa.column("model", sa.Text),
            sa.column("usd_per_million_tokens", sa.Numeric),
        ),
        [{"provider": p, "model": m, "usd_per_million_tokens": usd} for p, m, usd in PRICES],
    )
    op.create_index("documents_accepted_at", "documents", ["accepted_at"])
    op.execute("CREATE SCHEMA analytics")
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW analytics.{name} AS {body.format(**STATUSES)}")
    op.execute("CREATE VIEW analytics.embedding_prices AS SELECT * FROM public.embedding_prices")


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
    op.drop_index("documents_accepted_at", table_name="documents")
    op.drop_table("embedding_prices")
    op.drop_table("query_log")
