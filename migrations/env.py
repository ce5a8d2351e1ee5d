"""Alembic environment: runs migrations online against the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from services.config import Settings
from services.db import make_engine

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url") or Settings().database_url
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return str(url)


def run_migrations_online() -> None:
    """Runs every pending migration in one transaction per migration."""
    engine = make_engine(_database_url(), vector=False)
    engine.pool = pool.NullPool(engine.pool._creator)  # one short-lived connection
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
