"""Celery tasks: thin wrappers that run one stage of the pipeline under one retry policy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from services.broker import (
    BUILD_SPACE,
    EMBED,
    EMBED_SPACE,
    MIGRATIONS,
    PREPARE,
    SWEEP,
    WEBHOOKS,
)
from services.embedding import TransientEmbeddingError
from services.metrics import STAGE_SECONDS
from services.runtime import Runtime
from services.statuses import FailureClass
from services.webhooks import delivery
from workers import pipeline, space_build, space_driver, sweeper
from workers.celery_app import app, parser, runtime
from workers.formats.extracted import ProviderBusy
from workers.retry import retry_delay
from workers.work import DocumentWork

log = logging.getLogger(__name__)

TRANSIENT = (
    TransientEmbeddingError,
    ProviderBusy,
    OperationalError,
    KombuError,
    RedisError,
    OSError,
)
Result = TypeVar("Result")


class StageTask(Task):
    """A pipeline stage under Groundwire's retry policy.

    Transient errors (the provider, the database or the broker unreachable) retry with
    exponential backoff that honours a provider's Retry-After, up to `task_max_retries`;
    after that the documents fail as `gave_up`, as they do when the task outlasts its soft
    time limit. Any other error is a bug: the documents fail as `internal` at once, never
    looping.
    """

    def run_stage(
        self,
        stage: str,
        activity: str,
        work: Callable[[Runtime], Result],
        fail: Callable[[Runtime, FailureClass, str], int],
    ) -> Result | dict[str, int]:
        """Runs `work`, retrying transient errors; `fail` marks the task's documents failed."""
        current = runtime()
        settings = current.settings
        try:
            with STAGE_SECONDS.labels(stage).time():
                return work(current)
        except SoftTimeLimitExceeded:
            limit = settings.task_soft_time_limit_s
            log.warning("%s: over its %g s time limit", self.name, limit)
            why = f"gave up {activity}: the task ran past its {limit:g} s time limit"
            return {"failed": fail(current, FailureClass.GAVE_UP, why)}
        except TRANSIENT as error:
            if self.request.retries >= settings.task_max_retries:
                return {
                    "failed": fail(current, FailureClass.GAVE_UP, f"gave up {activity}: {error}")
                }
            delay = retry_delay(
                self.request.retries,
                cap_s=settings.task_retry_backoff_max_s,
                retry_after=getattr(error, "retry_after", None),
            )
            log.warning(
                "%s: retry %d in %.1fs: %s", self.name, self.request.retries + 1, delay, error
            )
            raise self.retry(exc=error, countdown=delay) from error
        except Exception as error:
            log.exception("%s failed", self.name)
            reason = f"internal: {type(error).__name__}: {error}"
            return {"failed": fail(current, FailureClass.INTERNAL, reason)}


@app.task(bind=True, base=StageTask, name=PREPARE, max_retries=None)
def prepare_documents(self: StageTask, items: list[list[int]]) -> dict[str, int]:
    """Parses and chunks a batch of documents, then hands embedding batches to `embed`."""
    pairs = [(int(i), int(v)) for i, v in items]

    def work(current: Runtime) -> dict[str, int]:
        prepared = pipeline.prepare(current, pairs, parser())
        for batch in prepared.batches:
            current.broker.send_embedding([w.to_message() for w in batch])
        return {
            "claimed": prepared.claimed,
            "done": prepared.done,
            "batches": len(prepared.batches),
        }

    return self.run_stage(
        "ingest",
        "preparing",
        work,
        lambda current, cls, why: pipeline.fail_unclaimed(current, pairs, cls, why),
    )


@app.task(bind=True, base=StageTask, name=EMBED, max_retries=None)
def embed_documents(self: StageTask, batch: list[dict[str, Any]]) -> dict[str, int]:
    """Embeds a batch of chunked documents of one collection and writes them."""
    works = [DocumentWork.from_message(m) for m in batch]

    def work(current: Runtime) -> dict[str, int]:
        stored = pipeline.embed_and_store(current, works)
        return {"done": stored.done, "failed": stored.failed, "fenced": stored.fenced}

    return self.run_stage(
        "embed",
        "embedding",
        work,
        lambda current, cls, why: pipeline.fail(current, works, cls, why),
    )


@app.task(name=SWEEP)
def sweep() -> int:
    """Re-enqueues documents stuck in `queued` or `processing`; returns how many."""
    return sweeper.sweep_once(runtime())


@app.task(name=WEBHOOKS)
def deliver_webhooks() -> int:
    """Writes finished batches' events and delivers what is due; returns how many attempts."""
    current = runtime()
    return delivery.tick(current.database, current.settings)


@app.task(bind=True, base=StageTask, name=BUILD_SPACE, max_retries=None)
def build_space(self: StageTask, migration_id: int, items: list[list[int]]) -> dict[str, int]:
    """Chunks documents for a migration's shadow space; hands embedding batches to embed."""
    pairs = [(int(i), int(v)) for i, v in items]

    def work(current: Runtime) -> dict[str, int]:
        batches = space_build.prepare_space(current, int(migration_id), pairs, parser())
        for batch in batches:
            current.broker.send_space_embedding(int(migration_id), [w.to_message() for w in batch])
        return {"batches": len(batches)}

    # A build that cannot finish leaves its documents due: the tick hands them out again.
    return self.run_stage("ingest", "building a space", work, lambda *_: 0)


@app.task(bind=True, base=StageTask, name=EMBED_SPACE, max_retries=None)
def embed_space(self: StageTask, migration_id: int, batch: list[dict[str, Any]]) -> dict[str, int]:
    """Embeds and writes a batch of a migration's shadow space."""
    works = [DocumentWork.from_message(m) for m in batch]

    def work(current: Runtime) -> dict[str, int]:
        return {"embedded": space_build.embed_space(current, int(migration_id), works)}

    return self.run_stage("embed", "embedding a space", work, lambda *_: 0)


@app.task(name=MIGRATIONS)
def advance_migrations() -> int:
    """Hands out what shadow spaces lack, finishes builds, drops expired spaces. A tick that
    meets the database or broker down does nothing: the next one picks up where it stopped."""
    try:
        return space_driver.tick(runtime())
    except TRANSIENT as error:
        log.warning("migration tick skipped: %s", error)
        return 0
