"""Text search vectors written by a trigger, so a collection in bulk-load mode can defer them.

`chunks.tsv` stops being a generated column: a BEFORE INSERT trigger computes it, exactly as
the generated expression did, unless the chunk's collection is in bulk-load mode. There it
stays NULL, and leaving bulk-load mode computes every missing vector in one parallel pass and
then builds the collection's GIN index once (see services/collections/service.py).

Revision ID: 0008_deferred_text_search
Revises: 0007_analytics
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.vectors import text_index_name

revision: str = "0008_deferred_text_search"
down_revision: str | None = "0007_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE chunks ALTER COLUMN tsv DROP EXPRESSION")
    op.execute(
        """
        CREATE FUNCTION chunks_text_search() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF coalesce((SELECT bulk_load FROM collections WHERE id = NEW.collection_id), false)
            THEN
                NEW.tsv := NULL;  -- computed when the collection leaves bulk-load mode
            ELSE
                NEW.tsv := to_tsvector(NEW.ts_config, NEW.text);
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER chunks_text_search BEFORE INSERT OR UPDATE OF text, ts_config"
        " ON chunks FOR EACH ROW EXECUTE FUNCTION chunks_text_search()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER chunks_text_search ON chunks")
    op.execute("DROP FUNCTION chunks_text_search()")
    collections = [int(c) for (c,) in op.get_bind().execute(sa.text("SELECT id FROM collections"))]
    for cid in collections:
        op.execute(f"DROP INDEX IF EXISTS {text_index_name(cid)}")
    op.execute("ALTER TABLE chunks DROP COLUMN tsv")
    op.execute(
        "ALTER TABLE chunks ADD COLUMN tsv tsvector"
        " GENERATED ALWAYS AS (to_tsvector(ts_config, text)) STORED"
    )
    for cid in collections:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {text_index_name(cid)} ON chunks USING gin (tsv)"
            f" WHERE collection_id = {cid}"
        )
