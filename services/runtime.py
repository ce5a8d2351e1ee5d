"""What a process builds once from its settings and hands down: database, embedders, broker.

The API builds one in its lifespan, each worker process in its process init, each command and
test its own; nothing is read from the environment after that, and nothing needs resetting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from celery import Celery
from redis.exceptions import RedisError

from services.broker import Broker
from services.config import Settings
from services.db import Database
from services.embedding.registry import EmbedderRegistry
from services.replicas import WritePositions, current_position

log = logging.getLogger(__name__)


class DatabaseNotConfigured(RuntimeError):
    """Raised when no database URL is available."""


@dataclass
class Runtime:
    """A process's dependencies, built from one settings object."""

    settings: Settings
    database: Database
    embedders: EmbedderRegistry
    broker: Broker
    # With DATABASE_READ_URL: the replica, and the collections' write positions.
    read_database: Database | None = None
    positions: WritePositions | None = None

    @classmethod
    def build(cls, settings: Settings, *, celery: Celery | None = None) -> Runtime:
        """Builds the dependencies for `settings` (a worker passes its own Celery app)."""
        if not settings.database_url:
            raise DatabaseNotConfigured("DATABASE_URL is not set")
        replica = settings.database_read_url
        return cls(
            settings=settings,
            database=Database(settings.database_url),
            embedders=EmbedderRegistry(settings),
            broker=Broker(settings, celery),
            read_database=Database(replica) if replica else None,
            positions=WritePositions(settings.broker_redis_url()) if replica else None,
        )

    def wrote(self, collection_ids: Iterable[int]) -> None:
        """After a commit that changed what the collections' searches return: records the
        primary's position for reads from the replica to wait for (nothing without one)."""
        if self.positions is None:
            return
        try:
            with self.database.scope() as session:
                position = current_position(session)
                self.positions.record(session, collection_ids, position)
        except RedisError as error:  # reads of these collections may miss it for a while
            log.warning("write position not recorded: %s", error)

    def close(self) -> None:
        """Releases the database connections."""
        self.database.dispose()
        if self.read_database is not None:
            self.read_database.dispose()
