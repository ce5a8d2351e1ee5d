"""Re-enqueues documents the broker may have lost: queued past a grace period, or processing
past their lease (a killed worker). Re-sending is harmless: runs are idempotent and fenced.
It also deletes document events past their retention (GROUNDWIRE_EVENTS_RETENTION_S), and
webhook deliveries delivered or given up on longer ago than GROUNDWIRE_WEBHOOK_RETENTION_S."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, or_, update
from sqlalchemy.orm import Session

from services.models import Document, DocumentEventRow, WebhookDelivery
from services.runtime import Runtime
from services.statuses import DocumentStatus


def stale_documents(session: Session, grace_s: float, lease_s: float) -> list[tuple[int, int, int]]:
    """Returns (id, version, content bytes) of stale documents and restarts their clocks.

    A document is stale when it waited `grace_s` in `queued`, or when its processing lease ran
    out: a busy worker renews its leases, a dead one stops. The lease is pushed forward so the
    next sweep does not send the document again while it waits in the queue.
    """
    now = func.now()
    rows = session.execute(
        update(Document)
        .where(
            or_(
                (Document.status == DocumentStatus.QUEUED)
                & (Document.enqueued_at < now - timedelta(seconds=grace_s)),
                (Document.status == DocumentStatus.PROCESSING)
                & (func.coalesce(Document.lease_expires_at, Document.started_at) < now),
            )
        )
        .values(enqueued_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(Document.id, Document.version, func.octet_length(Document.content))
    )
    return [(int(i), int(v), int(n)) for i, v, n in rows]


def prune_events(session: Session, retention_s: float) -> None:
    """Deletes the document events older than `retention_s`."""
    cutoff = func.now() - timedelta(seconds=retention_s)
    session.execute(delete(DocumentEventRow).where(DocumentEventRow.at < cutoff))


def prune_deliveries(session: Session, retention_s: float) -> None:
    """Deletes the deliveries that ended (delivered or failed) more than `retention_s` ago;
    pending ones stay, whatever their age."""
    cutoff = func.now() - timedelta(seconds=retention_s)
    ended = func.coalesce(WebhookDelivery.delivered_at, WebhookDelivery.last_attempt_at)
    session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.status != "pending", ended < cutoff)
    )


def sweep_once(runtime: Runtime) -> int:
    """Finds stale documents, commits their new clocks, then re-enqueues them."""
    settings = runtime.settings
    with runtime.database.scope() as session:
        prune_events(session, settings.events_retention_s)
        prune_deliveries(session, settings.webhook_retention_s)
    with runtime.database.scope() as session:
        stale = stale_documents(session, settings.queued_grace_s, settings.processing_lease_s)
    if not stale:
        return 0
    return runtime.broker.enqueue([(i, v) for i, v, _ in stale], [n for _, _, n in stale])
