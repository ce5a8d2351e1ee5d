"""FastAPI dependencies shared by the routers: the process's runtime, a request's session, and
the collection a path names.

The runtime is built once, in the app's lifespan, and read from the app's state here; handlers
declare what they need with the `Annotated` aliases below.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.api.errors import ApiError
from services.config import Settings
from services.models import Collection
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


def find_collection(session: Session, name: str) -> Collection:
    """Returns the named collection or raises a 404 ApiError."""
    collection = session.scalar(select(Collection).where(Collection.name == name))
    if collection is None:
        raise ApiError(404, "collection_not_found", f"no collection named {name!r}")
    return collection


def get_collection(
    session: SessionDep, name: Annotated[str, Path(description="the collection's name")]
) -> Collection:
    """Resolves the `{name}` of the path to its collection, or answers 404."""
    return find_collection(session, name)


CollectionDep = Annotated[Collection, Depends(get_collection)]
