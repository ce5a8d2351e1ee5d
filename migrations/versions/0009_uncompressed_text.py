"""Text stored without pglz: chunk text inline as it is, document content lz4 or uncompressed.

PostgreSQL compresses any value that makes a row exceed 2 kB with pglz, at about 40 MB/s
on one core. Nearly every chunk row crossed that line (a 1-2 kB passage next to its
vector), so each one paid a compression when written and a decompression whenever its text
was read (results, text search vectors); every document's content paid it too, inside the
ingest request. On the load corpus that was 2-3 of the database's 6-7 CPU seconds.

- `chunks`: `toast_tuple_target` at its maximum, so a row up to a page long keeps its text
  inline and uncompressed (rows with a very long text or a wide vector are still toasted).
- `documents.content`: lz4 where the server was built with it (a far cheaper compressor),
  else stored uncompressed out of line: about three times the disk for HTML, for no CPU.
  Only values written from now on change.

Revision ID: 0009_uncompressed_text
Revises: 0008_deferred_text_search
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_uncompressed_text"
down_revision: str | None = "0008_deferred_text_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_LZ4 = sa.text(
    "SELECT coalesce(bool_or('lz4' = ANY(enumvals)), false) FROM pg_settings"
    " WHERE name = 'default_toast_compression'"
)


def upgrade() -> None:
    op.execute("ALTER TABLE chunks SET (toast_tuple_target = 8160)")
    if op.get_bind().execute(_HAS_LZ4).scalar_one():
        op.execute("ALTER TABLE documents ALTER COLUMN content SET COMPRESSION lz4")
    else:
        op.execute("ALTER TABLE documents ALTER COLUMN content SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE documents ALTER COLUMN content SET STORAGE EXTENDED")
    op.execute("ALTER TABLE documents ALTER COLUMN content SET COMPRESSION DEFAULT")
    op.execute("ALTER TABLE chunks RESET (toast_tuple_target)")
