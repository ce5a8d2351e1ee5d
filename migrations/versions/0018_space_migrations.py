"""Embedding-space migrations: a collection's model or chunking changed without downtime.

`space_migrations`: one row per change of a collection's embedder or chunking, with the
settings on both sides, the thresholds (the old one, the re-calibrated one and how it was
found) and the last comparison. While a migration builds, its shadow space is a table of its
own, `chunks_c<collection>_m<migration>` (services/vectors.py), shaped like the collection's
partition of `chunks`; activating swaps the two tables in one transaction, after which the
migration's table holds the old space until it is dropped. At most one migration per
collection is building or ready.

`space_documents`: each document's state in a migration's shadow space: the version wanted,
the version built (NULL until written), its chunk and token counts there, and why it has no
chunks there if it could not be built (it stays in the active space as it was).

`collections.space_generation` counts a collection's switches: work claimed under an earlier
generation (an older model or chunking) is not written, and goes back to its queue.

`analytics.migrations`: each migration's tokens, time and estimated cost.

Revision ID: 0018_space_migrations
Revises: 0017_webhooks
Create Date: 2026-12-04
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0018_space_migrations"
down_revision: str | None = "0017_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("building", "ready", "active", "rolled_back", "failed")
_VISIBLE = importlib.import_module("migrations.versions.0011_analytics_per_workspace").VISIBLE
VIEW = """
    SELECT m.id AS migration_id, c.name AS collection, m.status,
           m.old_embedder, m.embedder, m.old_chunk_tokens, m.chunk_tokens,
           m.old_chunk_overlap, m.chunk_overlap,
           m.old_threshold, m.new_threshold, m.threshold_method,
           coalesce(s.documents, 0) AS documents, coalesce(s.chunks, 0) AS chunks,
           coalesce(s.embedded, 0) AS embedded_chunks, coalesce(s.cached, 0) AS cached_chunks,
           coalesce(s.tokens, 0) AS embedded_tokens,
           m.created_at, m.ready_at, m.activated_at, m.rolled_back_at, m.ended_at,
           extract(epoch FROM m.ready_at - m.created_at)::float8 AS build_seconds,
           p.usd_per_million_tokens,
           coalesce(s.tokens, 0) * p.usd_per_million_tokens / 1000000 AS estimated_cost_usd,
           w.name AS workspace
    FROM public.space_migrations m
    JOIN public.collections c ON c.id = m.collection_id
    JOIN public.workspaces w ON w.id = c.workspace_id
    LEFT JOIN (
        SELECT migration_id, count(*) FILTER (WHERE built_version IS NOT NULL) AS documents,
               sum(chunk_count) AS chunks, sum(embedded) AS embedded, sum(cached) AS cached,
               sum(embedded_tokens) AS tokens
        FROM public.space_documents GROUP BY migration_id
    ) s ON s.migration_id = m.id
    LEFT JOIN public.embedding_prices p
        ON p.provider = split_part(m.space, ':', 1) AND p.model = split_part(m.space, ':', 2)
    WHERE {visible}
"""


def _settings(prefix: str) -> list[sa.Column]:
    return [
        sa.Column(f"{prefix}embedder", sa.Text, nullable=False),
        sa.Column(f"{prefix}dimensions", sa.Integer, nullable=False),
        sa.Column(f"{prefix}max_input_tokens", sa.Integer, nullable=False),
        sa.Column(f"{prefix}chunk_tokens", sa.Integer, nullable=False),
        sa.Column(f"{prefix}chunk_overlap", sa.Integer, nullable=False),
        sa.Column(f"{prefix}space", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("space_generation", sa.Integer, nullable=False, server_default="0"),
    )
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    now = sa.func.now()
    op.create_table(
        "space_migrations",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "collection_id",
            sa.BigInteger,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.Text, nullable=False, server_default="building"),
        *_settings(""),
        *_settings("old_"),
        sa.Column("old_threshold", sa.Float, nullable=False),
        sa.Column("new_threshold", sa.Float, nullable=True),
        sa.Column("threshold_method", sa.Text, nullable=True),
        sa.Column("threshold_detail", JSONB, nullable=True),
        sa.Column("comparison", JSONB, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=now),
        sa.Column("ready_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("activated_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("rolled_back_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("ended_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("drop_after", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("dropped_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN ({statuses})", name="space_migrations_status"),
    )
    op.create_index(
        "space_migrations_open",
        "space_migrations",
        ["collection_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('building', 'ready')"),
    )
    op.create_index("space_migrations_collection", "space_migrations", ["collection_id", "id"])
    op.create_table(
        "space_documents",
        sa.Column(
            "migration_id",
            sa.BigInteger,
            sa.ForeignKey("space_migrations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("document_id", sa.BigInteger, primary_key=True),
        sa.Column("collection_id", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("built_version", sa.Integer, nullable=True),
        sa.Column("enqueued_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=now),
        sa.Column("built_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("chunk_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("token_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("embedded", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cached", sa.Integer, nullable=False, server_default="0"),
        sa.Column("embedded_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id", "document_id"],
            ["documents.collection_id", "documents.id"],
            name="space_documents_document",
            ondelete="CASCADE",
        ),
    )
    op.create_index("space_documents_document", "space_documents", ["document_id"])
    op.execute(
        "CREATE VIEW analytics.migrations WITH (security_barrier = true)"
        f" AS {VIEW.format(visible=_VISIBLE.format(ws='c.workspace_id'))}"
    )


def downgrade() -> None:
    op.execute("DROP VIEW analytics.migrations")
    tables = op.get_bind().execute(
        sa.text(
            "SELECT 'chunks_c' || collection_id || '_m' || id FROM space_migrations"
            " WHERE dropped_at IS NULL"
        )
    )
    for (name,) in tables:
        op.execute(f'DROP TABLE IF EXISTS "{name}"')
    op.drop_table("space_documents")
    op.drop_table("space_migrations")
    op.drop_column("collections", "space_generation")
