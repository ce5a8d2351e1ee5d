"""What a migration's shadow space still lacks, and how far its build has come.

A document belongs in the shadow space at the version the active space shows of it: every
`done` document must have its `space_documents` row built at its current version. Documents
queued or processing are not counted until they finish (their old version stays searchable in
the active space meanwhile); one that then changes again, or is new, or was updated, simply
becomes due again, so what changes during a build is caught up by the same loop that built it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.models import Collection, SpaceMigration
from services.statuses import DocumentStatus

# Done documents the shadow space lacks at their version, and not handed out in the last
# `lease` seconds: marked wanted (version, time) and returned, to send to the workers.
_DUE = text(
    """
    WITH due AS (
        SELECT d.id, d.version
        FROM documents d
        LEFT JOIN space_documents s ON s.migration_id = :migration AND s.document_id = d.id
        WHERE d.collection_id = :collection AND d.status = :done
          AND s.built_version IS DISTINCT FROM d.version
          AND (s.document_id IS NULL OR s.version <> d.version
               OR s.enqueued_at < now() - make_interval(secs => :lease))
        ORDER BY d.id
        LIMIT :limit
    )
    INSERT INTO space_documents (migration_id, document_id, collection_id, version, enqueued_at)
    SELECT :migration, id, :collection, version, now() FROM due
    ON CONFLICT (migration_id, document_id)
    DO UPDATE SET version = EXCLUDED.version, enqueued_at = EXCLUDED.enqueued_at
    RETURNING document_id, version
    """
)

_UNBUILT = text(
    """
    SELECT count(*) FROM documents d
    LEFT JOIN space_documents s ON s.migration_id = :migration AND s.document_id = d.id
    WHERE d.collection_id = :collection AND d.status = :done
      AND s.built_version IS DISTINCT FROM d.version
    """
)

_PROGRESS = text(
    """
    SELECT count(*),
           count(*) FILTER (WHERE s.built_version = d.version),
           coalesce(sum(s.embedded) FILTER (WHERE s.built_version IS NOT NULL), 0),
           coalesce(sum(s.cached) FILTER (WHERE s.built_version IS NOT NULL), 0),
           coalesce(sum(s.embedded_tokens) FILTER (WHERE s.built_version IS NOT NULL), 0),
           coalesce(sum(s.chunk_count) FILTER (WHERE s.built_version IS NOT NULL), 0),
           count(*) FILTER (WHERE s.built_version = d.version AND s.error IS NOT NULL)
    FROM documents d
    LEFT JOIN space_documents s ON s.migration_id = :migration AND s.document_id = d.id
    WHERE d.collection_id = :collection AND d.status = :done
    """
)


@dataclass(frozen=True)
class Progress:
    """How much of the collection the shadow space holds at the current versions."""

    total: int  # documents done in the collection
    done: int  # of those, built in the shadow space at their version
    embedded: int  # chunks embedded for the shadow space (the rest came from the cache)
    cached: int
    tokens: int
    chunks: int
    failed: int  # of `done`, those that could not be built (no chunks there, a reason)


def _keys(migration_id: int, collection_id: int) -> dict[str, object]:
    return {
        "migration": migration_id,
        "collection": collection_id,
        "done": DocumentStatus.DONE.value,
    }


def take_due(
    session: Session, migration_id: int, collection_id: int, lease_s: float, limit: int
) -> list[tuple[int, int]]:
    """Marks up to `limit` due documents handed out now; returns their (id, version) pairs.

    A document handed out less than `lease_s` ago is not handed out again (its build is in
    flight), unless its version changed; one whose message was lost is, after that.
    """
    rows = session.execute(
        _DUE, {**_keys(migration_id, collection_id), "lease": lease_s, "limit": limit}
    )
    return sorted((int(i), int(v)) for i, v in rows)


def unbuilt(session: Session, migration_id: int, collection_id: int) -> int:
    """How many done documents the shadow space lacks at their current version."""
    return int(session.execute(_UNBUILT, _keys(migration_id, collection_id)).scalar_one())


def progress(session: Session, migration_id: int, collection_id: int) -> Progress:
    """The build's progress over the collection as it is now."""
    row = session.execute(_PROGRESS, _keys(migration_id, collection_id)).one()
    return Progress(*(int(v) for v in row))


def open_migration(session: Session, collection: Collection) -> SpaceMigration | None:
    """The collection's migration building or ready, if it has one."""
    return session.scalar(
        select(SpaceMigration).where(
            SpaceMigration.collection_id == collection.id,
            SpaceMigration.status.in_(("building", "ready")),
        )
    )


_FAILED = text(
    """
    SELECT d.external_id, s.error FROM documents d
    JOIN space_documents s ON s.migration_id = :migration AND s.document_id = d.id
    WHERE d.collection_id = :collection AND d.status = :done
      AND s.built_version = d.version AND s.error IS NOT NULL
    ORDER BY d.id
    LIMIT :limit
    """
)


def failures(
    session: Session, migration_id: int, collection_id: int, limit: int = 20
) -> list[tuple[str, str]]:
    """Documents the new space could not build (their id and why), the first `limit`."""
    rows = session.execute(_FAILED, {**_keys(migration_id, collection_id), "limit": limit})
    return [(str(i), str(e)) for i, e in rows]
