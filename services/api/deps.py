"""FastAPI dependencies shared by the routers: the process's runtime, a request's session, its
caller and the scope a route needs, and the collection a path names.

The runtime is built once, in the app's lifespan, and read from the app's state here; handlers
declare what they need with the `Annotated` aliases below, the scope first: a key lacking the
scope gets 403 whatever the collection, and a collection the caller may not see is a 404 just
like one that does not exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.access.authenticate import (
    WORKSPACE_HEADER,
    Unauthenticated,
    UnknownWorkspace,
    authenticate,
)
from services.access.caller import AccessDenied, Caller, Scope
from services.api.errors import ApiError
from services.collections.schemas import NAME_PATTERN
from services.config import Settings
from services.models import Collection
from services.replicas import caught_up
from services.rerank.service import RerankStage
from services.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """Returns the runtime the app's lifespan built."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_runtime_settings(runtime: RuntimeDep) -> Settings:
    """Returns the settings the runtime was built from."""
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_runtime_settings)]


def get_rerank_stage(request: Request) -> RerankStage | None:
    """Returns the rerank stage the app's lifespan built (None: no reranker configured)."""
    stage: RerankStage | None = request.app.state.rerank
    return stage


RerankDep = Annotated[RerankStage | None, Depends(get_rerank_stage)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """Yields a request-scoped session; route handlers commit, errors roll back."""
    session = runtime.database.sessions()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


# Declares the scheme in the OpenAPI spec (and Swagger UI's Authorize button); the header is
# read below, so a missing one gets Groundwire's own 401, not FastAPI's 403.
_BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer gw_…`")


def get_caller(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> Caller:
    """Resolves the request's key to its caller, or answers 401 with a Bearer challenge."""
    try:
        caller = authenticate(
            session,
            runtime.settings,
            request.headers.get("authorization"),
            request.headers.get(WORKSPACE_HEADER),
        )
    except Unauthenticated as error:
        challenge = 'Bearer realm="groundwire"'
        if error.error:
            challenge += f', error="{error.error}"'
        raise ApiError(
            401, "unauthenticated", error.reason, {"WWW-Authenticate": challenge}
        ) from error
    except UnknownWorkspace as error:
        raise ApiError(404, "workspace_not_found", str(error)) from error
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def requires(scope: Scope) -> Callable[[Caller], Caller]:
    """A dependency that answers 403 unless the caller holds `scope`."""

    def check(caller: CallerDep) -> Caller:
        caller.require(scope)
        return caller

    return check


def server_admin(caller: CallerDep) -> Caller:
    """A dependency that answers 403 unless the caller holds the server admin key."""
    if not caller.server_admin:
        raise AccessDenied("only the server admin key may do this")
    return caller


Reader = Annotated[Caller, Depends(requires(Scope.READ))]
Writer = Annotated[Caller, Depends(requires(Scope.WRITE))]
Admin = Annotated[Caller, Depends(requires(Scope.ADMIN))]
ServerAdmin = Annotated[Caller, Depends(server_admin)]


log = logging.getLogger(__name__)


def find_collection(session: Session, caller: Caller, name: str) -> Collection:
    """Returns the caller's collection of that name, or raises a 404 ApiError: another
    workspace's collection, or one outside the key's list, is answered as if absent."""
    collection = None
    if caller.sees_collection(name) and re.match(NAME_PATTERN, name):  # else none can exist
        collection = session.scalar(
            select(Collection).where(
                Collection.workspace_id == caller.workspace_id, Collection.name == name
            )
        )
    if collection is None:
        raise ApiError(404, "collection_not_found", f"no collection named {name!r}")
    return collection


def get_collection(
    session: SessionDep,
    caller: CallerDep,
    name: Annotated[str, Path(description="the collection's name")],
) -> Collection:
    """Resolves the `{name}` of the path to the caller's collection, or answers 404."""
    return find_collection(session, caller, name)


CollectionDep = Annotated[Collection, Depends(get_collection)]


def get_reader(
    runtime: RuntimeDep, collection: CollectionDep, session: SessionDep
) -> Iterator[Session]:
    """Where a query of the collection reads: the replica (DATABASE_READ_URL) once it has
    replayed the collection's last write, waiting up to `read_replica_wait_ms`; else, and
    without a replica, the request's own session on the primary (services/replicas.py)."""
    if runtime.read_database is None or runtime.positions is None:
        yield session
        return
    reader = runtime.read_database.sessions()
    try:
        try:
            position = runtime.positions.of(session, collection.id)
            ready = caught_up(reader, position, runtime.settings.read_replica_wait_ms / 1000)
        except (RedisError, OperationalError) as error:  # the replica or Redis away
            log.warning("reading from the primary: %s", error)
            ready = False
        if not ready:
            reader.close()
            yield session
            return
        yield reader
    finally:
        reader.close()


ReaderDep = Annotated[Session, Depends(get_reader)]
