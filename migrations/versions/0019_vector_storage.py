"""A collection's vector storage: `vector` (full precision, as before) or `halfvec` (its HNSW
index, and the vectors its searches compare, in half precision: half the index's size).

Revision ID: 0019_vector_storage
Revises: 0018_space_migrations
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_vector_storage"
down_revision: str | None = "0018_space_migrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("vector_storage", sa.Text, nullable=False, server_default="vector"),
    )
    op.create_check_constraint(
        "collections_vector_storage", "collections", "vector_storage IN ('vector', 'halfvec')"
    )


def downgrade() -> None:
    # halfvec collections' indexes stay as they are: they serve the queries of a downgraded
    # service only if rebuilt over `vector` (drop and recreate them, or re-ingest).
    op.drop_constraint("collections_vector_storage", "collections")
    op.drop_column("collections", "vector_storage")
