"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from services.db import get_sessionmaker


def get_session() -> Iterator[Session]:
    """Yields a request-scoped session; route handlers commit, errors roll back."""
    session = get_sessionmaker()()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
