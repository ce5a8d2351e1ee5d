"""Switching a collection between two embedding spaces, in one transaction each way.

`activate` makes a ready migration's shadow space the collection's: the tables swap
(`tables.swap`), the collection takes the migration's embedder, chunking and threshold, its
space generation moves on (work claimed for the old space is refused and queued again), each
document's chunk and token counts swap with the migration's record of them, and the access
lists that changed since a document was built are copied onto its new chunks. `rollback` is
the same swap back, while the old space is kept; documents that changed after the switch are
queued again, to be processed for the space they are back in. Neither commits: the caller's
transaction makes the switch, all of it or none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg import sql
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from services.models import Collection, SpaceMigration
from services.spaces.build import failures, unbuilt
from services.spaces.tables import shadow_name, swap
from services.statuses import DocumentStatus
from services.vectors import partition_name
from services.webhooks.outbox import migration_event

# Each document's counts move to the other side: the documents row describes the active
# space, the migration's rows the other one. (Every part of one statement sees the same
# snapshot, so `before` reads the counts as they were.)
_SWAP_COUNTS = text(
    """
    WITH before AS (
        SELECT id, chunk_count, token_count FROM documents WHERE collection_id = :collection
    ), moved AS (
        UPDATE documents d SET chunk_count = s.chunk_count, token_count = s.token_count
        FROM space_documents s
        WHERE s.migration_id = :migration AND s.document_id = d.id
          AND d.collection_id = :collection AND s.built_version = d.indexed_version
    )
    UPDATE space_documents s SET chunk_count = b.chunk_count, token_count = b.token_count
    FROM before b
    WHERE s.migration_id = :migration AND s.document_id = b.id
    """
)

# Documents whose indexed version the (now) active table lacks: changed after the space was
# left. Put back in the queue at their version, to be processed for this space.
_REQUEUE_MISSING = """
    UPDATE documents d SET status = :queued, lease_owner = NULL, lease_expires_at = NULL
    WHERE d.collection_id = :collection AND d.status = :done
      AND NOT EXISTS (SELECT 1 FROM {table} c
                      WHERE c.document_id = d.id AND c.doc_version = d.indexed_version)
    RETURNING d.id, d.version
"""

_SYNC_ACCESS = """
    UPDATE {table} AS c SET access = d.access FROM documents AS d
    WHERE d.collection_id = :collection AND c.document_id = d.id
      AND c.access IS DISTINCT FROM d.access
"""


class NotBuildable(RuntimeError):
    """Documents the new space could not build: switching would lose them from search."""

    def __init__(self, failed: list[tuple[str, str]]) -> None:
        shown = "; ".join(f"{i}: {why}" for i, why in failed[:5])
        super().__init__(f"{len(failed)} documents could not be built in the new space: {shown}")
        self.failed = failed


class NotCaughtUp(RuntimeError):
    """Documents changed since the shadow space was built; they are being caught up."""

    def __init__(self, missing: int) -> None:
        super().__init__(f"{missing} documents changed since the space was built")
        self.missing = missing


def _apply(
    collection: Collection, migration: SpaceMigration, *, old: bool, threshold: float
) -> None:
    """Gives the collection the migration's settings (`old`: those it had before), the
    threshold, and its next space generation."""
    prefix = "old_" if old else ""
    for name in ("embedder", "dimensions", "max_input_tokens", "chunk_tokens", "chunk_overlap"):
        setattr(collection, name, getattr(migration, prefix + name))
    collection.threshold = threshold
    collection.space_generation = collection.space_generation + 1


def _settle(
    session: Session, migration: SpaceMigration, status: str, at: str, retain_hours: float
) -> None:
    """Records the switch on the migration (its status, when, how long the space not in use
    is kept) and writes its event."""
    now = datetime.now(UTC)
    migration.status = status
    setattr(migration, at, now)
    migration.drop_after = now + timedelta(hours=retain_hours)
    session.flush()
    migration_event(session, migration.id, status)


def _on(statement: str, table: str) -> TextClause:
    """`statement` with `{table}` naming the table."""
    return text(sql.SQL(statement).format(table=sql.Identifier(table)).as_string())


def _exchange(session: Session, collection: Collection, migration: SpaceMigration) -> None:
    """Swaps the counts, copies access lists onto the table coming in, swaps the tables.

    In this order: swapping the counts locks the documents' rows first (an access change in
    flight commits before, and none starts after), and only then the chunks table.
    """
    keys = {"collection": collection.id, "migration": migration.id}
    session.execute(_SWAP_COUNTS, keys)
    session.execute(_on(_SYNC_ACCESS, retained_table(migration)), {"collection": collection.id})
    swap(session, collection.id, migration.id)


def activate(
    session: Session, collection: Collection, migration: SpaceMigration, retain_hours: float
) -> None:
    """Switches the collection to the migration's space. The caller holds both rows locked
    for update (the collection's lock waits for every write of its chunks in flight).

    Raises NotCaughtUp, changing nothing, while a done document is missing from the shadow
    space at its current version, and NotBuildable when one could not be built there.
    """
    missing = unbuilt(session, migration.id, collection.id)
    if missing:
        raise NotCaughtUp(missing)
    failed = failures(session, migration.id, collection.id)
    if failed:
        raise NotBuildable(failed)
    _exchange(session, collection, migration)
    migration.old_threshold = collection.threshold  # what a rollback restores
    threshold = collection.threshold if migration.new_threshold is None else migration.new_threshold
    _apply(collection, migration, old=False, threshold=threshold)
    _settle(session, migration, "active", "activated_at", retain_hours)


def rollback(
    session: Session, collection: Collection, migration: SpaceMigration, retain_hours: float
) -> list[tuple[int, int]]:
    """Switches an activated migration's collection back to the old space, which was kept.

    Returns the (id, version) pairs put back in the queue (documents changed after the
    switch), to enqueue once committed. The new space is dropped by the sweeper.
    """
    _exchange(session, collection, migration)
    _apply(collection, migration, old=True, threshold=migration.old_threshold)
    requeued = session.execute(
        _on(_REQUEUE_MISSING, partition_name(collection.id)),
        {
            "collection": collection.id,
            "queued": DocumentStatus.QUEUED.value,
            "done": DocumentStatus.DONE.value,
        },
    )
    rows = [(int(i), int(v)) for i, v in requeued]
    _settle(session, migration, "rolled_back", "rolled_back_at", retain_hours)
    return rows


def retained_table(migration: SpaceMigration) -> str:
    """The migration's table: the shadow space before activation, the old space after."""
    return shadow_name(migration.collection_id, migration.id)
