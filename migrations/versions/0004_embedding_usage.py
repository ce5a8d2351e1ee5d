"""Embedding usage: per-document counters of the last run and a ledger of every embedding run.

Revision ID: 0004_embedding_usage
Revises: 0003_bulk_load
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_embedding_usage"
down_revision: str | None = "0003_bulk_load"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("embedded_chunks", "cached_chunks", "embedded_tokens"):
        op.add_column(
            "documents", sa.Column(column, sa.Integer, nullable=False, server_default="0")
        )
    op.create_table(
        "embedding_usage",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.Column("collection_id", sa.BigInteger, nullable=False),
        sa.Column("document_id", sa.BigInteger),
        sa.Column("space", sa.Text, nullable=False),
        sa.Column("inputs", sa.Integer, nullable=False),
        sa.Column("cached", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index("embedding_usage_collection_at", "embedding_usage", ["collection_id", "at"])


def downgrade() -> None:
    op.drop_table("embedding_usage")
    for column in ("embedded_tokens", "cached_chunks", "embedded_chunks"):
        op.drop_column("documents", column)
