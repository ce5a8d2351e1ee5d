"""HTTP routes for a collection's embedding-space migrations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from services.api.deps import Admin, CollectionDep, Reader, RuntimeDep, SessionDep
from services.api.errors import error_responses
from services.spaces import service
from services.spaces.schemas import Comparison, MigrationCreate, MigrationList, MigrationOut

MigrationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the migration's id")]

router = APIRouter(
    prefix="/v1/collections/{name}/migrations",
    tags=["migrations"],
    responses=error_responses(400, 401, 403, 404, 409, 422, 429, 503),
)


@router.post("", status_code=202, response_model=MigrationOut)
def start_migration(
    caller: Admin,
    collection: CollectionDep,
    body: MigrationCreate,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MigrationOut:
    """Starts building a shadow space with a new embedder or chunking, from the stored text;
    queries keep using the active space until the migration is activated."""
    migration = service.start(session, runtime, collection, body)
    session.commit()
    return service.out(session, collection, migration)


@router.get("", response_model=MigrationList)
def list_migrations(
    caller: Reader, collection: CollectionDep, session: SessionDep
) -> MigrationList:
    """The collection's migrations, newest first."""
    return MigrationList(
        migrations=[
            service.out(session, collection, m) for m in service.listed(session, collection)
        ]
    )


@router.get("/{migration_id}", response_model=MigrationOut)
def get_migration(
    caller: Reader, collection: CollectionDep, migration_id: MigrationId, session: SessionDep
) -> MigrationOut:
    """A migration's status, progress, re-calibrated threshold and last comparison."""
    return service.out(session, collection, service.find(session, collection, migration_id))


@router.post("/{migration_id}/activate", response_model=MigrationOut)
def activate_migration(
    caller: Admin,
    collection: CollectionDep,
    migration_id: MigrationId,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MigrationOut:
    """Switches the collection to the new space and threshold, in one transaction; the old
    space is kept for `GROUNDWIRE_MIGRATION_RETAIN_HOURS`, for a rollback."""
    migration = service.activate(session, runtime, collection, migration_id)
    return service.out(session, collection, migration)


@router.post("/{migration_id}/rollback", response_model=MigrationOut)
def rollback_migration(
    caller: Admin,
    collection: CollectionDep,
    migration_id: MigrationId,
    session: SessionDep,
    runtime: RuntimeDep,
) -> MigrationOut:
    """Switches back to the old space and threshold while they are kept."""
    migration = service.rollback(session, runtime, collection, migration_id)
    return service.out(session, collection, migration)


@router.put("/{migration_id}/comparison", response_model=MigrationOut)
def record_comparison(
    caller: Admin,
    collection: CollectionDep,
    migration_id: MigrationId,
    body: Comparison,
    session: SessionDep,
) -> MigrationOut:
    """Records what an evaluation of the new space measured (`groundwire eval --space
    shadow`); a `calibrated_threshold` becomes the new space's threshold (`eval`)."""
    migration = service.record_comparison(
        session, collection, migration_id, body.model_dump(exclude_none=True)
    )
    session.commit()
    return service.out(session, collection, migration)


@router.delete("/{migration_id}", response_model=MigrationOut)
def abandon_migration(
    caller: Admin, collection: CollectionDep, migration_id: MigrationId, session: SessionDep
) -> MigrationOut:
    """Abandons a build: it ends `failed` (`abandoned`) and its shadow space is dropped."""
    migration = service.abandon(session, collection, migration_id)
    session.commit()
    return service.out(session, collection, migration)
