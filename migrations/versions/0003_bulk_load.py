"""Bulk-load mode: a collection may be loaded without its HNSW index, built once afterwards.

Revision ID: 0003_bulk_load
Revises: 0002_full_text_search
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_bulk_load"
down_revision: str | None = "0002_full_text_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("bulk_load", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("collections", "bulk_load")
