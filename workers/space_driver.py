"""The migration tick (beat, every `migration_poll_s`): drives every open migration.

For each migration building or ready it hands out the documents its shadow space lacks (new,
updated, or whose build message was lost); a building migration with nothing left to build
gets its indexes, built once over the whole table (the bulk-load path), and its re-calibrated
threshold, and becomes ready. Migrations past their retention drop their table, and the
embedding cache rows of a space no collection and no open migration uses any more.
One tick at a time (an advisory lock); each step commits on its own, so a tick killed halfway
leaves what the next one finishes.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from services.broker import groups
from services.embedding import PermanentEmbeddingError
from services.models import Collection, EmbeddingCacheEntry, SpaceMigration
from services.query.retrieval import SearchSpace
from services.runtime import Runtime
from services.spaces.build import take_due, unbuilt
from services.spaces.calibrate import Recalibrated, recalibrate
from services.spaces.tables import build_indexes, drop_shadow
from services.webhooks.outbox import migration_event
from workers.ledger import record_requests

log = logging.getLogger(__name__)

TICK_LOCK = 0x6D696772  # "migr"


def tick(runtime: Runtime) -> int:
    """Runs one tick; returns how many documents it handed out."""
    database = runtime.database
    with database.engine.connect() as lock:  # held on its own connection for the whole tick
        if not lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": TICK_LOCK}).scalar():
            return 0  # another tick is running
        lock.commit()
        try:
            with database.scope() as session:
                open_ids = session.scalars(
                    select(SpaceMigration.id)
                    .where(SpaceMigration.status.in_(("building", "ready")))
                    .order_by(SpaceMigration.id)
                ).all()
            sent = sum(_advance(runtime, migration_id) for migration_id in open_ids)
            with database.scope() as session:
                _drop_expired(runtime, session)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": TICK_LOCK})
            lock.commit()
    return sent


def _advance(runtime: Runtime, migration_id: int) -> int:
    settings = runtime.settings
    with runtime.database.scope() as session:
        migration = session.get(SpaceMigration, migration_id)
        if migration is None or migration.status not in ("building", "ready"):
            return 0
        due = take_due(
            session,
            migration.id,
            migration.collection_id,
            settings.migration_lease_s,
            settings.migration_batch_documents,
        )
        finished = (
            not due
            and migration.status == "building"
            and not unbuilt(session, migration.id, migration.collection_id)
        )
    # the hand-out is committed before the messages leave
    per_task, characters = settings.ingest_batch_documents, settings.ingest_batch_characters
    for group in groups(due, None, per_task, characters):
        runtime.broker.build_space(migration_id, group)
    if finished:
        with runtime.database.scope() as session:
            _finish(runtime, session, session.get_one(SpaceMigration, migration_id))
    return len(due)


def _finish(runtime: Runtime, session: Session, migration: SpaceMigration) -> None:
    """Builds the shadow space's indexes and threshold; the migration becomes ready."""
    if migration.status != "building":
        return  # abandoned meanwhile
    collection = session.get_one(Collection, migration.collection_id)
    started = datetime.now(UTC)
    build_indexes(
        session, collection.id, migration.id, migration.dimensions, collection.vector_storage
    )
    session.commit()
    index_seconds = (datetime.now(UTC) - started).total_seconds()
    embedders = runtime.embedders
    old = embedders.get(collection.embedder, collection.dimensions)
    new = embedders.get(migration.embedder, migration.dimensions)
    old.requests.drain(), new.requests.drain()  # what is on the ledger already
    asked: dict[str, int] = {}
    found: Recalibrated | None = None
    why = ""
    try:
        found = recalibrate(
            session,
            (old, SearchSpace.active(collection), collection.threshold),
            (
                new,
                SearchSpace(
                    collection.id,
                    migration.dimensions,
                    collection.language,
                    migration.id,
                    storage=collection.vector_storage,
                ),
            ),
            new.default_threshold,
            migration.comparison,
        )
    except PermanentEmbeddingError as error:  # an embedder that refuses the questions
        why = f"re-calibrating the threshold: {error}"
    finally:  # the questions embedded for it are on the ledger, as every request is
        batch = uuid.uuid4()
        for embedder in (old, new):
            requests = embedder.requests.drain()
            asked[embedder.space] = sum(r.inputs for r in requests)
            record_requests(session, batch, collection.id, embedder.space, requests)
    if found is None:
        now = datetime.now(UTC)
        migration.status, migration.error = "failed", why
        migration.ended_at = migration.drop_after = now
        session.flush()
        migration_event(session, migration.id, migration.status)
        session.commit()
        log.warning("migration %d failed: %s", migration.id, why)
        return
    migration.new_threshold = found.threshold
    migration.threshold_method = found.method
    migration.threshold_detail = {
        **found.detail,
        "questions_embedded": asked.get(new.space, 0),  # those the cache did not have
        "index_seconds": round(index_seconds, 3),
    }
    migration.status = "ready"
    migration.ready_at = datetime.now(UTC)
    session.flush()
    migration_event(session, migration.id, migration.status)
    session.commit()
    log.info(
        "migration %d of collection %d ready: threshold %.4f (%s)",
        migration.id,
        collection.id,
        found.threshold,
        found.method,
    )


def _drop_expired(runtime: Runtime, session: Session) -> None:
    now = datetime.now(UTC)
    expired = session.scalars(
        select(SpaceMigration).where(
            SpaceMigration.drop_after <= now, SpaceMigration.dropped_at.is_(None)
        )
    ).all()
    for migration in expired:
        drop_shadow(session, migration.collection_id, migration.id)
        migration.dropped_at = now
        # The space the dropped table held: the old one after activation, the new after a
        # rollback.
        space = migration.old_space if migration.status == "active" else migration.space
        if not _space_in_use(runtime, session, space, migration.id):
            session.execute(delete(EmbeddingCacheEntry).where(EmbeddingCacheEntry.space == space))
        session.commit()
        log.info("migration %d: dropped its table (%s)", migration.id, space)


def _space_in_use(runtime: Runtime, session: Session, space: str, dropping: int) -> bool:
    """Whether a collection embeds in `space`, or another kept table holds its vectors."""
    for embedder, dimensions in session.execute(select(Collection.embedder, Collection.dimensions)):
        try:
            if runtime.embedders.get(embedder, dimensions).space == space:
                return True
        except Exception:  # an embedder this process cannot build: assume it is in use
            log.warning("cannot tell the space of embedder %s; its cache rows stay", embedder)
            return True
    kept = session.execute(
        select(SpaceMigration.space, SpaceMigration.old_space).where(
            SpaceMigration.dropped_at.is_(None), SpaceMigration.id != dropping
        )
    )
    return any(space in pair for pair in kept)


@contextmanager
def ticking(runtime: Runtime, every_s: float = 0.2) -> Iterator[None]:
    """Runs the tick every `every_s` in a thread of this process while the block runs, as
    beat would send it (for tests and benchmarks)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            tick(runtime)
            stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
