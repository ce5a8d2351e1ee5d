"""Full-text search: a text search configuration per collection, a generated tsvector per chunk,
and a partial GIN index per collection (as the HNSW indexes are).

The plain btree on chunks.collection_id goes: every search reaches chunks through a
collection's partial index, and a btree over a whole collection only tempted the planner into
reading every row of it.

Revision ID: 0002_full_text_search
Revises: 0001_initial
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.vectors import text_index_name

revision: str = "0002_full_text_search"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("language", sa.Text, nullable=False, server_default="english"),
    )
    op.execute("ALTER TABLE chunks ADD COLUMN ts_config regconfig NOT NULL DEFAULT 'english'")
    op.execute(
        "ALTER TABLE chunks ADD COLUMN tsv tsvector"
        " GENERATED ALWAYS AS (to_tsvector(ts_config, text)) STORED"
    )
    op.drop_index("chunks_collection", table_name="chunks")
    for (collection_id,) in op.get_bind().execute(sa.text("SELECT id FROM collections")):
        cid = int(collection_id)
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {text_index_name(cid)} ON chunks USING gin (tsv)"
            f" WHERE collection_id = {cid}"
        )


def downgrade() -> None:
    for (collection_id,) in op.get_bind().execute(sa.text("SELECT id FROM collections")):
        op.execute(f"DROP INDEX IF EXISTS {text_index_name(int(collection_id))}")
    op.execute("ALTER TABLE chunks DROP COLUMN tsv")
    op.execute("ALTER TABLE chunks DROP COLUMN ts_config")
    op.drop_column("collections", "language")
    op.create_index("chunks_collection", "chunks", ["collection_id"])
