"""Webhooks and their outbox.

`webhooks`: a workspace's receivers, the events each wants and, optionally, the collections.
`webhook_deliveries` is the outbox: one row per event and receiver, written in the
transaction that made the change, so an event exists exactly when its change committed. A
trigger on `document_events` (itself written by the documents' triggers, 0016) adds the
`document.done` and `document.failed` rows; `batch.finished` rows are added by the delivery
tick in the transaction that sets `ingest_batches.finished_at` once a batch's last document
has committed (services/webhooks/outbox.py). `webhook_attempts` logs every try.

Revision ID: 0017_webhooks
Revises: 0016_document_events
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision: str = "0017_webhooks"
down_revision: str | None = "0016_document_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One outbox row per matching receiver for each event of a document that became done or
# failed; nothing at all while the workspace has no webhooks.
OUTBOX = """
CREATE FUNCTION webhook_outbox_documents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (webhook_id, event_type, occurred_at, data)
    SELECT w.id, 'document.' || e.status, e.at,
           jsonb_build_object('collection', c.name, 'id', e.external_id,
                              'version', e.version, 'status', e.status)
           || CASE WHEN e.error_class IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('error_class', e.error_class) END
    FROM added AS e
    JOIN collections AS c ON c.id = e.collection_id
    JOIN webhooks AS w
      ON w.workspace_id = c.workspace_id
     AND ('document.' || e.status) = ANY (w.events)
     AND (w.collections IS NULL OR c.name = ANY (w.collections))
    WHERE e.status IN ('done', 'failed')
    ORDER BY e.id, w.id;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.BigInteger,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", ARRAY(sa.Text), nullable=False),
        sa.Column("collections", ARRAY(sa.Text), nullable=True),  # NULL: every collection
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_by", UUID(as_uuid=True), nullable=True),
        sa.Column(
            "created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("webhooks_workspace", "webhooks", ["workspace_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column(
            "webhook_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # retries stop this long after it (a manual retry starts it again)
        sa.Column(
            "retry_from", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("last_attempt_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_latency_ms", sa.Float, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="webhook_deliveries_status"
        ),
    )
    op.create_index("webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "seq"])
    op.create_index(
        "webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "delivery_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])
    op.add_column(
        "ingest_batches", sa.Column("finished_at", sa.TIMESTAMP(timezone=True), nullable=True)
    )
    op.create_index(
        "ingest_batches_unfinished",
        "ingest_batches",
        ["created_at"],
        postgresql_where=sa.text("finished_at IS NULL"),
    )
    # no webhook can be waiting for the batches that exist now: the tick starts with none
    op.execute("UPDATE ingest_batches SET finished_at = now()")
    op.execute(OUTBOX)
    op.execute(
        "CREATE TRIGGER document_events_webhooks AFTER INSERT ON document_events"
        " REFERENCING NEW TABLE AS added FOR EACH STATEMENT"
        " EXECUTE FUNCTION webhook_outbox_documents()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER document_events_webhooks ON document_events")
    op.execute("DROP FUNCTION webhook_outbox_documents()")
    op.drop_index("ingest_batches_unfinished", table_name="ingest_batches")
    op.drop_column("ingest_batches", "finished_at")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
