"""Celery tasks: thin wrappers that add the retry policy around the pipeline's stages."""

from __future__ import annotations

import logging
from typing import Any

from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from services.config import get_settings
from services.embedding import TransientEmbeddingError
from services.metrics import STAGE_SECONDS
from workers import pipeline, sweeper
from workers.celery_app import EMBED, PREPARE, SWEEP, app
from workers.retry import retry_delay
from workers.work import DocumentWork

log = logging.getLogger(__name__)

TRANSIENT = (TransientEmbeddingError, OperationalError, KombuError, RedisError, OSError)


def _retry(task: Any, error: Exception) -> Exception:
    """Returns the Retry to raise, after a backoff that honours the provider's Retry-After."""
    settings = get_settings()
    delay = retry_delay(
        task.request.retries,
        cap_s=settings.task_retry_backoff_max_s,
        retry_after=getattr(error, "retry_after", None),
    )
    log.warning("%s: retry %d in %.1fs: %s", task.name, task.request.retries + 1, delay, error)
    return task.retry(exc=error, countdown=delay)


def _gave_up(task: Any) -> bool:
    return bool(task.request.retries >= get_settings().task_max_retries)


@app.task(bind=True, name=PREPARE, max_retries=None)
def prepare_documents(self: Any, items: list[list[int]]) -> dict[str, int]:
    """Parses and chunks a batch of documents, then hands embedding batches to `embed`."""
    pairs = [(int(i), int(v)) for i, v in items]
    try:
        with STAGE_SECONDS.labels("ingest").time():
            prepared = pipeline.prepare(pairs)
        for batch in prepared.batches:
            embed_documents.apply_async(
                args=[[w.to_message() for w in batch]], queue=get_settings().embed_queue
            )
    except TRANSIENT as error:
        if _gave_up(self):
            pipeline.fail_unclaimed(pairs, pipeline.GAVE_UP, f"gave up preparing: {error}")
            return {"failed": len(pairs)}
        raise _retry(self, error) from error
    except Exception as error:  # a bug: fail loudly, never loop
        log.exception("prepare %s failed", pairs)
        pipeline.fail_unclaimed(
            pairs, pipeline.INTERNAL, f"internal: {type(error).__name__}: {error}"
        )
        return {"failed": len(pairs)}
    return {"claimed": prepared.claimed, "done": prepared.done, "batches": len(prepared.batches)}


@app.task(bind=True, name=EMBED, max_retries=None)
def embed_documents(self: Any, batch: list[dict[str, Any]]) -> dict[str, int]:
    """Embeds a batch of chunked documents of one collection and writes them."""
    works = [DocumentWork.from_message(m) for m in batch]
    try:
        with STAGE_SECONDS.labels("embed").time():
            stored = pipeline.embed_and_store(works)
    except TRANSIENT as error:
        if _gave_up(self):
            failed = pipeline.fail(works, pipeline.GAVE_UP, f"gave up embedding: {error}")
            return {"failed": failed}
        raise _retry(self, error) from error
    except Exception as error:
        log.exception("embedding batch of %d documents failed", len(works))
        failed = pipeline.fail(
            works, pipeline.INTERNAL, f"internal: {type(error).__name__}: {error}"
        )
        return {"failed": failed}
    return {"done": stored.done, "failed": stored.failed, "fenced": stored.fenced}


@app.task(name=SWEEP)
def sweep() -> int:
    """Re-enqueues documents stuck in `queued` or `processing`; returns how many."""
    return sweeper.sweep_once()
