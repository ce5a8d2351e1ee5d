"""Pipeline stages: processing leases with owner tokens, failure classes, a provider request ledger.

Revision ID: 0006_pipeline_stages
Revises: 0005_content_type
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0006_pipeline_stages"
down_revision: str | None = "0005_content_type"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("lease_owner", UUID(as_uuid=True)))
    op.add_column("documents", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    op.add_column("documents", sa.Column("error_class", sa.Text))
    op.add_column("embedding_usage", sa.Column("batch_id", UUID(as_uuid=True)))
    op.create_table(
        "embedding_requests",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
        ),
        sa.Column("batch_id", UUID(as_uuid=True), nullable=False),
        sa.Column("collection_id", sa.BigInteger, nullable=False),
        sa.Column("space", sa.Text, nullable=False),
        sa.Column("inputs", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("rate_limited", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index(
        "embedding_requests_collection_at", "embedding_requests", ["collection_id", "at"]
    )


def downgrade() -> None:
    op.drop_table("embedding_requests")
    op.drop_column("embedding_usage", "batch_id")
    for column in ("error_class", "lease_expires_at", "lease_owner"):
        op.drop_column("documents", column)
