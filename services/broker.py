"""The broker contract: the Celery app's configuration, the task names, and sending work.

Producers (the API, the sweeper, the ingest stage handing batches to the embed stage) send
tasks by name through a `Broker`, without importing the worker code that runs them; workers
build their Celery app from the same configuration (`workers/celery_app.py`). The database
stays the record of work: a message carries only document ids and versions (or chunks that
the document row can always reproduce), and anything the broker loses the sweeper sends again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import redis
from celery import Celery

from services.batching import pack
from services.config import Settings

log = logging.getLogger(__name__)

PREPARE = "groundwire.prepare_documents"
EMBED = "groundwire.embed_documents"
SWEEP = "groundwire.sweep"
WEBHOOKS = "groundwire.deliver_webhooks"
BUILD_SPACE = "groundwire.build_space"
EMBED_SPACE = "groundwire.embed_space"
MIGRATIONS = "groundwire.advance_migrations"


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached."""


def broker_url(redis_url: str) -> str:
    """Returns a kombu broker URL for `redis_url`; a unix socket becomes `redis+socket://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


def celery_config(settings: Settings) -> dict[str, Any]:
    """Returns Groundwire's Celery configuration: its delivery guarantees and routes.

    Tasks are acknowledged after they finish and re-queued if their process dies, so a crash
    never loses work; each process reserves one message at a time. Redis re-delivers a message
    not acknowledged within the visibility timeout, which is kept above the longest task and
    the largest retry delay. A task past its soft time limit fails its documents; one past
    the hard limit is killed.
    """
    if settings.task_retry_backoff_max_s >= settings.visibility_timeout_s:
        raise ValueError("task_retry_backoff_max_s must stay below visibility_timeout_s")
    if settings.task_retry_backoff_max_s >= settings.processing_lease_s:
        raise ValueError("task_retry_backoff_max_s must stay below processing_lease_s")
    if not settings.task_soft_time_limit_s < settings.task_time_limit_s:
        raise ValueError("task_soft_time_limit_s must stay below task_time_limit_s")
    return {
        "broker_url": broker_url(settings.broker_redis_url()),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_default_queue": settings.ingest_queue,
        "task_routes": {
            PREPARE: {"queue": settings.ingest_queue},
            EMBED: {"queue": settings.embed_queue},
            WEBHOOKS: {"queue": settings.webhook_queue},
            BUILD_SPACE: {"queue": settings.ingest_queue},
            EMBED_SPACE: {"queue": settings.embed_queue},
            MIGRATIONS: {"queue": settings.ingest_queue},
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "sweep": {"task": SWEEP, "schedule": settings.sweep_interval_s},
            # a tick waiting longer than a few intervals is dropped: the next one does its work
            "webhooks": {
                "task": WEBHOOKS,
                "schedule": settings.webhook_poll_s,
                "options": {"expires": max(5.0, 5 * settings.webhook_poll_s)},
            },
            "migrations": {
                "task": MIGRATIONS,
                "schedule": settings.migration_poll_s,
                "options": {"expires": max(5.0, 5 * settings.migration_poll_s)},
            },
        },
    }


def create_celery(settings: Settings, *, include: Iterable[str] = ()) -> Celery:
    """Returns a Celery app configured for `settings` (workers pass their task modules)."""
    app = Celery("groundwire", include=list(include), set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def groups(
    items: Sequence[tuple[int, int]],
    sizes: Sequence[int] | None,
    max_documents: int,
    max_characters: int,
) -> Iterator[list[tuple[int, int]]]:
    """Yields consecutive groups of at most `max_documents` items and `max_characters` of
    content (a single larger document goes alone)."""
    weights = sizes if sizes is not None else [0] * len(items)
    for group in pack(
        zip(items, weights, strict=True), lambda p: p[1], max_documents, max_characters
    ):
        yield [item for item, _ in group]


class Broker:
    """Sends Groundwire's tasks and reads its queue lengths, for one process's settings."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app if app is not None else create_celery(settings)

    def stages(self) -> dict[str, str]:
        """Each stage's queue name."""
        return {"ingest": self.settings.ingest_queue, "embed": self.settings.embed_queue}

    def enqueue(
        self,
        items: Sequence[tuple[int, int]],
        sizes: Sequence[int] | None = None,
        documents: int | None = None,
    ) -> int:
        """Sends (document id, version) pairs in ingest tasks; returns how many were sent.

        A task takes at most `documents` documents (default `ingest_batch_documents`) and
        `ingest_batch_characters` of content when `sizes` are known. Called only after the
        rows are committed. If the broker is unreachable the documents stay `queued` in the
        database and the sweeper sends them again later: nothing is lost.
        """
        settings = self.settings
        per_task = max(1, documents or settings.ingest_batch_documents)
        sent = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for group in groups(items, sizes, per_task, settings.ingest_batch_characters):
                    self.app.send_task(
                        PREPARE,
                        args=[[[i, v] for i, v in group]],
                        queue=settings.ingest_queue,
                        producer=producer,
                    )
                    sent += len(group)
        except Exception:
            log.exception("enqueue failed after %d documents; the sweeper will resend them", sent)
        return sent

    def send_embedding(self, messages: list[dict[str, Any]]) -> None:
        """Sends one embedding batch (chunked documents of one collection) to the embed stage.

        Raises on a broker failure: the sending task retries, and its documents stay leased.
        """
        self.app.send_task(EMBED, args=[messages], queue=self.settings.embed_queue)

    def build_space(self, migration_id: int, items: Sequence[tuple[int, int]]) -> None:
        """Sends (document id, version) pairs to be built into a migration's shadow space.

        Raises on a broker failure; the migration tick hands them out again later.
        """
        self.app.send_task(
            BUILD_SPACE,
            args=[migration_id, [[i, v] for i, v in items]],
            queue=self.settings.ingest_queue,
        )

    def send_space_embedding(self, migration_id: int, messages: list[dict[str, Any]]) -> None:
        """Sends one embedding batch of a migration's shadow space to the embed stage."""
        self.app.send_task(
            EMBED_SPACE, args=[migration_id, messages], queue=self.settings.embed_queue
        )

    def queue_lengths(self, names: Sequence[str]) -> dict[str, int]:
        """Returns the number of messages waiting in each named queue (kombu's Redis lists)."""
        client = redis.Redis.from_url(self.settings.broker_redis_url())
        try:
            return {name: int(client.llen(name)) for name in names}
        except redis.RedisError as error:
            raise BrokerUnavailable(f"the broker is unreachable: {error}") from error
        finally:
            client.close()

    def ping(self) -> None:
        """Raises when the broker's Redis does not answer within two seconds."""
        client = redis.Redis.from_url(
            self.settings.broker_redis_url(), socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.ping()
        finally:
            client.close()

    def restore_unacknowledged(self) -> int:
        """Puts every delivered but unacknowledged message back on its queue; returns how many.

        Only for a broker whose consumers are all known to be dead (a supervisor whose one
        worker died holds the only consumer of its own Redis): a live worker's messages would
        be delivered twice. That is harmless (runs are fenced), but costs a second run.
        """
        with self.app.connection_for_write() as connection:
            channel = connection.default_channel
            client = channel.client
            tags = client.hkeys(channel.unacked_key)
            for tag in tags:
                channel.qos.restore_by_tag(tag, client=client)
        return len(tags)
