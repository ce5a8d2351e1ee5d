"""Engine and session factories; `session_scope()` is the commit boundary for non-HTTP code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from pgvector.psycopg import register_vector
from psycopg import Connection
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from services.config import get_settings


class DatabaseNotConfigured(RuntimeError):
    """Raised when no database URL is available."""


def sqlalchemy_url(url: str) -> str:
    """Returns `url` with the psycopg 3 driver named, whatever Postgres scheme it came with."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split(':', 1)[0]}://…")


def make_engine(url: str, *, vector: bool = True, pool_size: int = 5) -> Engine:
    """Creates an engine; with `vector`, pgvector types are registered on each connection."""
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )
    if vector:

        @event.listens_for(engine, "connect")
        def _register_vector(dbapi_connection: Any, _record: Any) -> None:
            register_vector(dbapi_connection)

    return engine


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """Returns the process-wide engine for the configured database."""
    url = get_settings().database_url
    if not url:
        raise DatabaseNotConfigured("DATABASE_URL is not set")
    return make_engine(url)


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    """Returns the process-wide session factory."""
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """Yields a session that commits on success and rolls back on any error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def driver_connection(session: Session) -> Connection[Any]:
    """Returns the psycopg connection under `session`, inside its current transaction."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, Connection)
    return raw


def reset_engine() -> None:
    """Disposes the cached engine (after a fork, or when settings change in tests)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()
