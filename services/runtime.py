"""What a process builds once from its settings and hands down: database, embedders, broker.

The API builds one in its lifespan, each worker process in its process init, each command and
test its own; nothing is read from the environment after that, and nothing needs resetting.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from services.broker import Broker
from services.config import Settings
from services.db import Database
from services.embedding.registry import EmbedderRegistry


class DatabaseNotConfigured(RuntimeError):
    """Raised when no database URL is available."""


@dataclass
class Runtime:
    """A process's dependencies, built from one settings object."""

    settings: Settings
    database: Database
    embedders: EmbedderRegistry
    broker: Broker

    @classmethod
    def build(cls, settings: Settings, *, celery: Celery | None = None) -> Runtime:
        """Builds the dependencies for `settings` (a worker passes its own Celery app)."""
        if not settings.database_url:
            raise DatabaseNotConfigured("DATABASE_URL is not set")
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            embedders=EmbedderRegistry(settings),
            broker=Broker(settings, celery),
        )

    def close(self) -> None:
        """Releases the database connections."""
        self.database.dispose()
