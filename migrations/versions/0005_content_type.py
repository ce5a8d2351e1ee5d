"""Documents carry a content type (text/plain, text/markdown, text/html) that workers parse.

Revision ID: 0005_content_type
Revises: 0004_embedding_usage
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_content_type"
down_revision: str | None = "0004_embedding_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "documents",
        sa.Column("content_type", sa.Text, nullable=False, server_default="text/plain"),
    )


def downgrade() -> None:
    op.drop_column("documents", "content_type")
