"""Uploaded files kept as they came, and where each chunk sits in its original.

`originals` holds each distinct file once per workspace, keyed by its SHA-256, with the number
of documents that use it; its bytes are `original_parts` of at most 1 MiB each (stored
uncompressed: most files are compressed already), so a file is written and read a part at a
time. A trigger on `documents` keeps the count: a document that takes an original adds one,
one that lets it go (deleted, with its collection too, or given other bytes) takes one away,
and the original goes with its last document in that same transaction.

Attachments of a message are documents whose metadata names it (`attached_to`), indexed so
that the message's access list and deletion reach them.

`documents.parsed` keeps what parsing took from the file (its title and metadata such as
`pages`), so that a byte-identical upload keeps them. `chunks.location` is where the passage
sits: `{"page": n}`, `{"start_seconds": s, "end_seconds": e}`, or NULL.

Revision ID: 0013_originals
Revises: 0012_chunks_by_collection
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0013_originals"
down_revision: str | None = "0012_chunks_by_collection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNT_REFERENCES = """
CREATE FUNCTION originals_count_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    left_over integer;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.original_id IS NOT DISTINCT FROM NEW.original_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.original_id IS NOT NULL THEN
        UPDATE originals SET refs = refs + 1 WHERE id = NEW.original_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.original_id IS NOT NULL THEN
        -- The decrement locks the row: two deletes of its last users take turns, and the
        -- one that brings it to zero deletes it.
        UPDATE originals SET refs = refs - 1 WHERE id = OLD.original_id
        RETURNING refs INTO left_over;
        IF left_over IS NOT NULL AND left_over <= 0 THEN
            DELETE FROM originals WHERE id = OLD.original_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "originals",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.BigInteger,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sha256", sa.LargeBinary, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("refs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.UniqueConstraint("workspace_id", "sha256", name="originals_workspace_sha256"),
    )
    op.create_table(
        "original_parts",
        sa.Column(
            "original_id",
            sa.BigInteger,
            sa.ForeignKey("originals.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.execute("ALTER TABLE original_parts ALTER COLUMN data SET STORAGE EXTERNAL")
    op.add_column(
        "documents",
        sa.Column(
            "original_id",
            sa.BigInteger,
            sa.ForeignKey("originals.id", name="documents_original"),
            nullable=True,
        ),
    )
    op.add_column(
        "documents", sa.Column("parsed", JSONB, nullable=False, server_default=sa.text("'{}'"))
    )
    op.create_index("documents_original", "documents", ["original_id"])
    # A message's attachments, found by the message's id (to follow its access and deletion).
    op.execute(
        "CREATE INDEX documents_attached_to ON documents"
        " (collection_id, (metadata ->> 'attached_to')) WHERE metadata ? 'attached_to'"
    )
    op.add_column("chunks", sa.Column("location", JSONB, nullable=True))
    op.execute(COUNT_REFERENCES)
    op.execute(
        "CREATE TRIGGER documents_original_references"
        " AFTER INSERT OR UPDATE OF original_id OR DELETE ON documents"
        " FOR EACH ROW EXECUTE FUNCTION originals_count_references()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER documents_original_references ON documents")
    op.execute("DROP FUNCTION originals_count_references()")
    op.drop_column("chunks", "location")
    op.drop_index("documents_attached_to", table_name="documents")
    op.drop_index("documents_original", table_name="documents")
    op.drop_column("documents", "parsed")
    op.drop_column("documents", "original_id")
    op.drop_table("original_parts")
    op.drop_table("originals")
