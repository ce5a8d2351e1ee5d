"""The database handle a process builds at start: engine, session factory, commit boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from pgvector.psycopg import register_vector
from psycopg import Connection
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def sqlalchemy_url(url: str) -> str:
    """Returns `url` with the psycopg 3 driver named, whatever Postgres scheme it came with."""
    for prefix in _SCHEMES:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split(':', 1)[0]}://…")


def scrub_url(text: str, url: str) -> str:
    """Returns `text` with the database URL's credentials replaced by `***`, however
    malformed the URL (a driver's error message may quote the whole connection string)."""
    secrets = {url}
    rest = url.split("://", 1)[-1]
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        secrets.add(userinfo)
        if ":" in userinfo:
            password = userinfo.split(":", 1)[1]
            secrets.update({password, unquote(password)})
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def libpq_url(url: str) -> str:
    """Returns `url` as libpq (and so `psycopg.connect`) reads it, without a driver name."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]


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


class Database:
    """One database: its engine and session factory, built once per process and handed down."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    @contextmanager
    def scope(self) -> Iterator[Session]:
        """Yields a session that commits on success and rolls back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Closes every pooled connection."""
        self.engine.dispose()


def driver_connection(session: Session) -> Connection[Any]:
    """Returns the psycopg connection under `session`, inside its current transaction."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, Connection)
    return raw
