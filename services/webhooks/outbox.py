"""The outbox's SQL: batches that just finished become `batch.finished` events, due
deliveries are claimed, and each attempt is recorded. Every statement binds its values.

`document.done` and `document.failed` rows are written by a trigger in the transaction that
changed the document (migrations/versions/0017_webhooks.py). A batch is finished when the
last of its documents has committed, which one transaction cannot see when two finish side
by side; so the tick checks the unfinished batches and, in one transaction, marks each
finished one and writes its events. Nothing is written before the change it reports has
committed, and the row lock on the batch lets only one tick write a batch's events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.statuses import Acceptance, DocumentStatus

FINISH_BATCHES = text("""
WITH finished AS (
    UPDATE ingest_batches AS b SET finished_at = now()
    WHERE b.finished_at IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM batch_items AS i JOIN documents AS d ON d.id = i.document_id
        WHERE i.batch_id = b.id AND i.accepted_status <> :unchanged
          AND d.status IN (:queued, :processing))
    RETURNING b.id, b.collection_id, b.total, b.finished_at
), counted AS (
    SELECT f.id, f.collection_id, f.total, f.finished_at,
           count(i.batch_id) AS present,
           count(*) FILTER (WHERE i.accepted_status = :unchanged) AS unchanged,
           count(*) FILTER (WHERE i.accepted_status <> :unchanged AND d.status = :done) AS done,
           count(*) FILTER (WHERE i.accepted_status <> :unchanged AND d.status = :failed)
               AS failed
    FROM finished AS f
    LEFT JOIN batch_items AS i ON i.batch_id = f.id
    LEFT JOIN documents AS d ON d.id = i.document_id
    GROUP BY f.id, f.collection_id, f.total, f.finished_at
)
INSERT INTO webhook_deliveries (webhook_id, event_type, occurred_at, data)
SELECT w.id, 'batch.finished', c.finished_at,
       jsonb_build_object('batch_id', c.id, 'collection', col.name, 'total', c.total,
                          'done', c.done, 'failed', c.failed, 'unchanged', c.unchanged,
                          'deleted', c.total - c.present)
FROM counted AS c
JOIN collections AS col ON col.id = c.collection_id
JOIN webhooks AS w
  ON w.workspace_id = col.workspace_id
 AND 'batch.finished' = ANY (w.events)
 AND (w.collections IS NULL OR col.name = ANY (w.collections))
ORDER BY c.finished_at, c.id, w.id
""")

# A migration's change of status, for the receivers of its workspace that want it; written in
# the transaction that made the change.
MIGRATION_EVENT = text("""
INSERT INTO webhook_deliveries (webhook_id, event_type, occurred_at, data)
SELECT w.id, :event_type, now(),
       jsonb_build_object('collection', col.name, 'migration', m.id, 'status', m.status,
                          'embedder', m.embedder, 'chunk_tokens', m.chunk_tokens,
                          'chunk_overlap', m.chunk_overlap, 'threshold', m.new_threshold,
                          'threshold_method', m.threshold_method)
FROM space_migrations AS m
JOIN collections AS col ON col.id = m.collection_id
JOIN webhooks AS w
  ON w.workspace_id = col.workspace_id
 AND :event_type = ANY (w.events)
 AND (w.collections IS NULL OR col.name = ANY (w.collections))
WHERE m.id = :migration
ORDER BY w.id
""")


def migration_event(session: Session, migration_id: int, status: str) -> None:
    """Writes `migration.<status>` events of a migration whose status just changed (flushed)."""
    session.execute(
        MIGRATION_EVENT, {"event_type": f"migration.{status}", "migration": migration_id}
    )


CLAIM = text("""
UPDATE webhook_deliveries AS d
SET next_attempt_at = now() + make_interval(secs => :claim_s)
FROM (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND webhook_id <> ALL (CAST(:busy AS uuid[]))
    ORDER BY next_attempt_at, seq
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
) AS due, webhooks AS w
WHERE d.id = due.id AND w.id = d.webhook_id
RETURNING d.id, d.seq, d.webhook_id, w.url, w.secret, d.event_type, d.occurred_at, d.data,
          d.attempts
""")

# The attempt is logged only for a delivery still there: one whose webhook was deleted while
# it was being sent is gone, and so is what it would have logged.
RECORD_ATTEMPT = text("""
WITH tried AS (
    UPDATE webhook_deliveries
    SET attempts = attempts + 1, last_attempt_at = now(),
        last_status_code = CAST(:status_code AS integer),
        last_latency_ms = CAST(:latency_ms AS double precision), last_error = CAST(:error AS text),
        status = CASE WHEN :ok THEN 'delivered'
                      WHEN now() + make_interval(secs => :delay_s)
                           > retry_from + make_interval(secs => :retry_for_s) THEN 'failed'
                      ELSE 'pending' END,
        delivered_at = CASE WHEN :ok THEN now() ELSE delivered_at END,
        next_attempt_at = now() + make_interval(secs => :delay_s)
    WHERE id = :id
    RETURNING id
)
INSERT INTO webhook_attempts (delivery_id, status_code, latency_ms, error)
SELECT id, CAST(:status_code AS integer), CAST(:latency_ms AS double precision),
       CAST(:error AS text)
FROM tried
""")

RELEASE = text("""
UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => :delay_s)
WHERE id = :id AND status = 'pending'
""")


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one round, with what its receiver needs."""

    id: uuid.UUID
    seq: int
    webhook_id: uuid.UUID
    url: str
    secret: str
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """What became of a claimed delivery this round: tried (with its result), or put back
    untried (`tried` false) to go with its receiver's next attempt."""

    id: uuid.UUID
    tried: bool
    ok: bool = False
    status_code: int | None = None
    latency_ms: float = 0.0
    error: str | None = None
    delay_s: float = 0.0


def finish_batches(session: Session) -> None:
    """Marks the batches with nothing pending finished and writes their events."""
    session.execute(
        FINISH_BATCHES,
        {
            "unchanged": Acceptance.UNCHANGED.value,
            "queued": DocumentStatus.QUEUED.value,
            "processing": DocumentStatus.PROCESSING.value,
            "done": DocumentStatus.DONE.value,
            "failed": DocumentStatus.FAILED.value,
        },
    )


def claim(
    session: Session, limit: int, claim_s: float, busy: list[uuid.UUID] | None = None
) -> list[Claimed]:
    """Claims up to `limit` due deliveries for `claim_s` (a tick that dies lets them go),
    none of the receivers in `busy` (their earlier deliveries are still being sent)."""
    params = {"limit": limit, "claim_s": claim_s, "busy": [str(b) for b in busy or []]}
    rows = session.execute(CLAIM, params).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.seq)


def record(session: Session, outcomes: list[Outcome], retry_for_s: float) -> None:
    """Records each outcome: an attempt in the log and the delivery's new state."""
    tried = [
        {
            "id": o.id,
            "ok": o.ok,
            "status_code": o.status_code,
            "latency_ms": o.latency_ms,
            "error": o.error,
            "delay_s": 0.0 if o.ok else o.delay_s,
            "retry_for_s": retry_for_s,
        }
        for o in outcomes
        if o.tried
    ]
    untried = [{"id": o.id, "delay_s": o.delay_s} for o in outcomes if not o.tried]
    if tried:
        session.execute(RECORD_ATTEMPT, tried)
    if untried:
        session.execute(RELEASE, untried)
