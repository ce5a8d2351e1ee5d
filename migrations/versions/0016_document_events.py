"""Document events: every change of a document's status or version, and its deletion (status
`deleted`), in order, written by triggers in the transaction that makes the change and
announced on commit with NOTIFY `groundwire_events` (its payload: the newest event id). The
API's event streams read them (services/events/), and a stream that reconnects with
Last-Event-ID replays what it missed. Deleting a collection writes none for its documents.

Statement triggers with transition tables write one row per changed document and send one
notification per statement, so a batch of thousands costs one NOTIFY, not thousands.

Revision ID: 0016_document_events
Revises: 0015_rerank
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_document_events"
down_revision: str | None = "0015_rerank"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "groundwire_events"
# `{changed}`: the transition table's rows that are events.
FUNCTION = """
CREATE FUNCTION document_events_{op}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    newest bigint;
BEGIN
    WITH added AS (
        INSERT INTO document_events
            (collection_id, document_id, external_id, version, status, error_class, access)
        SELECT n.collection_id, n.id, n.external_id, n.version, {status}, n.error_class,
               n.access
        FROM {changed}
        ORDER BY n.id
        RETURNING id
    )
    SELECT max(id) INTO newest FROM added;
    IF newest IS NOT NULL THEN
        PERFORM pg_notify('{channel}', newest::text);
    END IF;
    RETURN NULL;
END $$
"""
CHANGED = {
    "insert": "new_rows AS n",
    # a deleted document's last event; none for those of a collection being deleted
    "delete": (
        "old_rows AS n WHERE EXISTS (SELECT 1 FROM collections c WHERE c.id = n.collection_id)"
    ),
    "update": (
        "new_rows AS n JOIN old_rows AS o ON o.id = n.id"
        " WHERE n.status IS DISTINCT FROM o.status OR n.version IS DISTINCT FROM o.version"
    ),
}
REFERENCING = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


def upgrade() -> None:
    op.create_table(
        "document_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column(
            "collection_id",
            sa.BigInteger,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("document_id", sa.BigInteger, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error_class", sa.Text, nullable=True),
        # the document's access list then: a stream shows a reader only what it may read
        sa.Column("access", sa.ARRAY(sa.Text), nullable=True),
    )
    op.create_index("document_events_collection", "document_events", ["collection_id", "id"])
    op.create_index("document_events_at", "document_events", ["at"])
    for name in ("insert", "update", "delete"):
        status = "'deleted'" if name == "delete" else "n.status"
        op.execute(FUNCTION.format(op=name, changed=CHANGED[name], channel=CHANNEL, status=status))
        op.execute(
            f"CREATE TRIGGER documents_events_{name} AFTER {name.upper()} ON documents"
            f" {REFERENCING[name]} FOR EACH STATEMENT EXECUTE FUNCTION document_events_{name}()"
        )


def downgrade() -> None:
    for name in ("delete", "update", "insert"):
        op.execute(f"DROP TRIGGER documents_events_{name} ON documents")
        op.execute(f"DROP FUNCTION document_events_{name}()")
    op.drop_table("document_events")
