"""Claiming documents under a lease, renewing leases, and failing documents, fenced by owner.

A claim marks a batch of document versions `processing` with one owner token and an expiry.
Every later write checks version and owner, so a run whose lease was taken over, or that works
on a superseded version, changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.statuses import DocumentStatus, FailureClass
from workers.work import DocumentWork

# Every statement binds the statuses it reads and writes.
STATUSES = {
    "queued": DocumentStatus.QUEUED.value,
    "processing": DocumentStatus.PROCESSING.value,
    "failed": DocumentStatus.FAILED.value,
}

# Claims the listed versions that still wait for work, locking rows in id order (two claims of
# overlapping sets cannot deadlock). A newer claim takes over from an older one: a message is
# only delivered again when its holder died or outlived the broker's visibility timeout, and the
# new owner token fences the old run's write out.
_CLAIM = text(
    """
    WITH wanted AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS w(id, version)
    ), target AS (
        SELECT d.id FROM documents d JOIN wanted w ON d.id = w.id AND d.version = w.version
        WHERE d.status IN (:queued, :processing)
        ORDER BY d.id
        FOR UPDATE OF d
    )
    UPDATE documents d
    SET status = :processing, attempts = d.attempts + 1, started_at = now(),
        lease_owner = :owner, lease_expires_at = now() + make_interval(secs => :lease)
    FROM target t, collections c
    WHERE d.id = t.id AND c.id = d.collection_id
    RETURNING d.id, d.version, d.collection_id, d.content, d.content_type, c.embedder,
              c.dimensions, c.chunk_tokens, c.chunk_overlap, c.language, d.original_id,
              coalesce(d.metadata->>'filename', d.external_id), d.external_id, c.workspace_id,
              d.access, d.metadata ? 'attached_to', c.space_generation

    """
)

# Fails the listed versions that were claimed `max_attempts` times and never finished: each
# attempt died with its worker (killed at the task time limit, or out of memory).
_GIVE_UP = text(
    """
    UPDATE documents d
    SET status = :failed, error_class = :gave_up, finished_at = now(),
        error = 'gave up after ' || d.attempts || ' attempts: each ended without a result '
                || '(the worker died or was killed at its time limit)',
        lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS w(id, version)
    WHERE d.id = w.id AND d.version = w.version AND d.status IN (:queued, :processing)
      AND d.attempts >= :max_attempts
    RETURNING d.id
    """
)

_OWNED = text(
    """
    UPDATE documents d SET lease_expires_at = now() + make_interval(secs => :lease)
    FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:owners AS uuid[]))
         AS w(id, version, owner)
    WHERE d.id = w.id AND d.version = w.version AND d.lease_owner = w.owner
      AND d.status = :processing
    RETURNING d.id
    """
)

_MARK_FAILED = text(
    """
    UPDATE documents d
    SET status = :failed, error = f.reason, error_class = f.class, finished_at = now(),
        lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:owners AS uuid[]),
                CAST(:classes AS text[]), CAST(:reasons AS text[]))
         AS f(id, version, owner, class, reason)
    WHERE d.id = f.id AND d.version = f.version AND d.status IN (:queued, :processing)
      AND (f.owner IS NULL OR d.lease_owner = f.owner)
    RETURNING d.id
    """
)


@dataclass(frozen=True)
class Claimed:
    """A document version this run now holds the lease on, with its collection's settings."""

    id: int
    version: int
    collection_id: int
    content: str
    content_type: str
    embedder: str  # the collection's embedder spec
    dimensions: int
    chunk_tokens: int
    chunk_overlap: int
    language: str
    original_id: int | None = None  # an uploaded file, parsed from its bytes
    filename: str = ""
    external_id: str = ""
    workspace_id: int = 0
    access: list[str] | None = None
    attached: bool = False  # itself an attachment: its own attachments are not taken out
    generation: int = 0  # the collection's space generation its settings are of


@dataclass(frozen=True)
class Failure:
    """A document version to mark failed, with a reason class and message."""

    id: int
    version: int
    owner: uuid.UUID | None
    error_class: FailureClass
    reason: str


def claim_documents(
    session: Session, items: Sequence[tuple[int, int]], owner: uuid.UUID, lease_s: float
) -> list[Claimed]:
    """Takes the lease on each listed (id, version) still to be done; returns those taken."""
    if not items:
        return []
    rows = session.execute(
        _CLAIM,
        {
            "ids": [i for i, _ in items],
            "versions": [v for _, v in items],
            "owner": owner,
            "lease": lease_s,
            **STATUSES,
        },
    )
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def give_up_exhausted(
    session: Session, items: Sequence[tuple[int, int]], max_attempts: int
) -> set[int]:
    """Fails, as `gave_up`, listed versions already claimed `max_attempts` times; returns ids."""
    if not items:
        return set()
    rows = session.execute(
        _GIVE_UP,
        {
            "ids": [i for i, _ in items],
            "versions": [v for _, v in items],
            "max_attempts": max_attempts,
            "gave_up": FailureClass.GAVE_UP.value,
            **STATUSES,
        },
    )
    return {int(i) for (i,) in rows}


def owner_keys(works: Sequence[DocumentWork]) -> dict[str, Any]:
    """Returns the (id, version, owner) arrays that fence a statement to what `works` own."""
    return {
        "ids": [w.id for w in works],
        "versions": [w.version for w in works],
        "owners": [w.owner for w in works],
    }


def renew_leases(session: Session, works: Sequence[DocumentWork], lease_s: float) -> set[int]:
    """Extends the lease of each document this run still owns; returns their ids."""
    if not works:
        return set()
    rows = session.execute(_OWNED, {**owner_keys(works), "lease": lease_s, **STATUSES})
    return {int(i) for (i,) in rows}


def fail_documents(session: Session, failures: Sequence[Failure]) -> set[int]:
    """Marks versions failed with a reason class, unless superseded, finished or taken over."""
    if not failures:
        return set()
    rows = session.execute(
        _MARK_FAILED,
        {
            "ids": [f.id for f in failures],
            "versions": [f.version for f in failures],
            "owners": [f.owner for f in failures],
            "classes": [f.error_class.value for f in failures],
            "reasons": [f.reason[:2000] for f in failures],
            **STATUSES,
        },
    )
    return {int(i) for (i,) in rows}


_SHARE_COLLECTIONS = text(
    "SELECT id FROM collections WHERE id = ANY(CAST(:collections AS bigint[])) ORDER BY id"
    " FOR SHARE"
)

_REQUEUE_SUPERSEDED = text(
    """
    UPDATE documents d
    SET status = :queued, lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:owners AS uuid[]),
                CAST(:generations AS int[])) AS w(id, version, owner, generation),
         collections c
    WHERE d.id = w.id AND d.version = w.version AND d.lease_owner = w.owner
      AND d.status = :processing AND c.id = d.collection_id
      AND c.space_generation <> w.generation
    RETURNING d.id, d.version
    """
)


def requeue_superseded(session: Session, works: Sequence[DocumentWork]) -> list[tuple[int, int]]:
    """Puts back in the queue each owned document whose work is of an earlier space
    generation (its collection switched model or chunking since the claim); returns those
    (id, version) pairs, to enqueue once committed.

    Holds a share lock on the collections until the commit, so a switch (which locks the row
    for update) waits for this write, and a write that comes after it sees its generation.
    """
    if not works:
        return []
    collections = sorted({w.collection_id for w in works})
    session.execute(_SHARE_COLLECTIONS, {"collections": collections})
    rows = session.execute(
        _REQUEUE_SUPERSEDED,
        {**owner_keys(works), "generations": [w.generation for w in works], **STATUSES},
    )
    return [(int(i), int(v)) for i, v in rows]
