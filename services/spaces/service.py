"""Starting, showing, switching and abandoning a collection's embedding-space migrations.
Never commits, except `activate`, which owns its transactions (it waits for catch-up)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from services.api.errors import ApiError
from services.collections.service import resolve_embedding
from services.embedding import EmbeddingError
from services.models import Collection, SpaceMigration
from services.runtime import Runtime
from services.spaces import switch
from services.spaces.build import open_migration, progress
from services.spaces.calibrate import from_eval
from services.spaces.schemas import (
    MigrationCreate,
    MigrationOut,
    SpaceSettings,
    Threshold,
)
from services.spaces.tables import create_shadow, drop_shadow
from services.webhooks.outbox import migration_event

CATCH_UP_POLL_S = 0.25


def _space(runtime: Runtime, spec: str, dimensions: int) -> str:
    try:
        return runtime.embedders.get(spec, dimensions).space
    except EmbeddingError as error:
        raise ApiError(
            503, "embedder_unavailable", str(error), headers={"Retry-After": "30"}
        ) from error


def start(
    session: Session, runtime: Runtime, collection: Collection, body: MigrationCreate
) -> SpaceMigration:
    """Creates the migration and its empty shadow table; the migration tick builds it."""
    if collection.bulk_load:
        raise ApiError(
            409, "bulk_load", "the collection is in bulk-load mode: leave it before migrating"
        )
    spec = body.embedder or collection.embedder
    same_embedder = body.embedder is None or body.embedder == collection.embedder
    tokens = body.chunk_tokens or (collection.chunk_tokens if same_embedder else None)
    overlap = body.chunk_overlap
    if overlap is None and same_embedder and tokens == collection.chunk_tokens:
        overlap = collection.chunk_overlap
    embedder, tokens, overlap = resolve_embedding(runtime, spec, tokens, overlap)
    old_space = _space(runtime, collection.embedder, collection.dimensions)
    if (embedder.space, tokens, overlap) == (
        old_space,
        collection.chunk_tokens,
        collection.chunk_overlap,
    ):
        raise ApiError(
            422, "nothing_to_change", "the collection already has this embedder and chunking"
        )
    session.refresh(collection, with_for_update=True)  # one start at a time per collection
    building = open_migration(session, collection)
    if building is not None:
        raise ApiError(
            409,
            "migration_in_progress",
            f"migration {building.id} of this collection is still open: activate or delete it",
        )
    # An earlier switch's kept space can no longer be switched back to: it goes now.
    for earlier in session.scalars(
        select(SpaceMigration).where(
            SpaceMigration.collection_id == collection.id, SpaceMigration.dropped_at.is_(None)
        )
    ):
        drop_shadow(session, collection.id, earlier.id)
        earlier.dropped_at = datetime.now(UTC)
    migration = SpaceMigration(
        collection_id=collection.id,
        status="building",
        embedder=spec,
        dimensions=embedder.dimensions,
        max_input_tokens=embedder.max_input_tokens,
        chunk_tokens=tokens,
        chunk_overlap=overlap,
        space=embedder.space,
        old_embedder=collection.embedder,
        old_dimensions=collection.dimensions,
        old_max_input_tokens=collection.max_input_tokens,
        old_chunk_tokens=collection.chunk_tokens,
        old_chunk_overlap=collection.chunk_overlap,
        old_space=old_space,
        old_threshold=collection.threshold,
    )
    session.add(migration)
    try:
        session.flush()
    except IntegrityError as error:  # another start won the race
        raise ApiError(
            409, "migration_in_progress", "a migration of this collection is open"
        ) from error
    create_shadow(session, collection.id, migration.id)
    return migration


def find(
    session: Session, collection: Collection, migration_id: int, *, lock: bool = False
) -> SpaceMigration:
    """The collection's migration `migration_id`; 404 when the collection has none such."""
    query = select(SpaceMigration).where(
        SpaceMigration.id == migration_id, SpaceMigration.collection_id == collection.id
    )
    migration = session.scalar(query.with_for_update() if lock else query)
    if migration is None:
        raise ApiError(404, "not_found", f"migration {migration_id} not found")
    return migration


def listed(session: Session, collection: Collection) -> list[SpaceMigration]:
    """The collection's migrations, newest first."""
    return list(
        session.scalars(
            select(SpaceMigration)
            .where(SpaceMigration.collection_id == collection.id)
            .order_by(SpaceMigration.id.desc())
        )
    )


def out(session: Session, collection: Collection, migration: SpaceMigration) -> MigrationOut:
    """The API's view of a migration, with its progress now."""
    made = progress(session, migration.id, collection.id)
    eta: float | None = None
    if migration.status == "building" and 0 < made.done < made.total:
        elapsed = (datetime.now(UTC) - migration.created_at).total_seconds()
        eta = round(elapsed / made.done * (made.total - made.done), 1)
    elif migration.status == "building" and made.total == made.done:
        eta = 0.0
    return MigrationOut(
        id=migration.id,
        collection=collection.name,
        status=migration.status,
        source=SpaceSettings(
            embedder=migration.old_embedder,
            dimensions=migration.old_dimensions,
            chunk_tokens=migration.old_chunk_tokens,
            chunk_overlap=migration.old_chunk_overlap,
        ),
        target=SpaceSettings(
            embedder=migration.embedder,
            dimensions=migration.dimensions,
            chunk_tokens=migration.chunk_tokens,
            chunk_overlap=migration.chunk_overlap,
        ),
        total=made.total,
        done=made.done,
        failed=made.failed,
        embedded=made.embedded,
        cached=made.cached,
        tokens=made.tokens,
        eta_seconds=eta,
        threshold=Threshold(
            old=migration.old_threshold,
            new=migration.new_threshold,
            method=migration.threshold_method,
            detail=migration.threshold_detail,
        ),
        comparison=migration.comparison,
        error=migration.error,
        created_at=migration.created_at,
        ready_at=migration.ready_at,
        activated_at=migration.activated_at,
        rolled_back_at=migration.rolled_back_at,
        ended_at=migration.ended_at,
        retained_until=migration.drop_after if migration.dropped_at is None else None,
    )


def _busy() -> ApiError:
    return ApiError(
        503,
        "busy",
        "the collection's chunks stayed in use: try again",
        headers={"Retry-After": "5"},
    )


def _locked(session: Session, collection: Collection, migration_id: int) -> SpaceMigration:
    migration = find(session, collection, migration_id, lock=True)
    session.refresh(collection, with_for_update=True)  # waits for writes of its chunks
    return migration


def activate(
    session: Session, runtime: Runtime, collection: Collection, migration_id: int
) -> SpaceMigration:
    """Switches the collection to the migration's space, waiting (up to
    `migration_activate_wait_s`) for documents changed meanwhile to be caught up."""
    settings = runtime.settings
    deadline = time.monotonic() + settings.migration_activate_wait_s
    while True:
        migration = _locked(session, collection, migration_id)
        if migration.status != "ready":
            raise ApiError(
                409, "not_ready", f"the migration is {migration.status}, not ready to activate"
            )
        try:
            switch.activate(session, collection, migration, settings.migration_retain_hours)
            session.commit()
            runtime.wrote([collection.id])
            return migration
        except switch.NotBuildable as failed:
            session.rollback()
            raise ApiError(409, "not_buildable", str(failed)) from failed
        except switch.NotCaughtUp as behind:
            session.rollback()
            if time.monotonic() >= deadline:
                raise ApiError(
                    409,
                    "catching_up",
                    f"{behind.missing} documents changed since the space was built and are"
                    " being caught up: try again shortly",
                    headers={"Retry-After": "5"},
                ) from behind
            time.sleep(CATCH_UP_POLL_S)
        except OperationalError as error:  # the swap's lock timed out behind a long query
            session.rollback()
            raise _busy() from error


def rollback(
    session: Session, runtime: Runtime, collection: Collection, migration_id: int
) -> SpaceMigration:
    """Switches back to the space the migration left, while it is kept."""
    migration = _locked(session, collection, migration_id)
    if migration.status != "active" or migration.dropped_at is not None:
        why = (
            "its old space was dropped"
            if migration.status == "active"
            else f"it is {migration.status}"
        )
        raise ApiError(409, "cannot_roll_back", f"the migration cannot be rolled back: {why}")
    try:
        requeued = switch.rollback(
            session, collection, migration, runtime.settings.migration_retain_hours
        )
        session.commit()
    except OperationalError as error:
        session.rollback()
        raise _busy() from error
    runtime.wrote([collection.id])
    runtime.broker.enqueue(requeued)
    return migration


def abandon(session: Session, collection: Collection, migration_id: int) -> SpaceMigration:
    """Abandons a build (building or ready): it fails as `abandoned`; the tick drops its table."""
    migration = _locked(session, collection, migration_id)
    if migration.status not in ("building", "ready"):
        raise ApiError(
            409, "not_open", f"the migration is {migration.status}: only a build can be abandoned"
        )
    now = datetime.now(UTC)
    migration.status = "failed"
    migration.error = "abandoned"
    migration.ended_at = now
    migration.drop_after = now
    session.flush()
    migration_event(session, migration.id, migration.status)
    return migration


def record_comparison(
    session: Session, collection: Collection, migration_id: int, comparison: dict[str, Any]
) -> SpaceMigration:
    """Records an evaluation's result; a calibrated threshold becomes the new space's (as the
    tick would take it when the build finishes: `calibrate.from_eval`)."""
    migration = find(session, collection, migration_id, lock=True)
    if migration.status not in ("building", "ready"):
        raise ApiError(409, "not_open", f"the migration is {migration.status}")
    migration.comparison = comparison
    evaluated = from_eval(comparison)
    if evaluated is not None:
        migration.new_threshold = evaluated.threshold
        migration.threshold_method = evaluated.method
        migration.threshold_detail = evaluated.detail
    session.flush()
    return migration
