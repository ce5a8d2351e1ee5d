"""Celery tasks: thin wrappers that add the retry policy around plain functions."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import OperationalError

from services.config import get_settings
from services.embedding import PermanentEmbeddingError, TransientEmbeddingError
from workers import pipeline, sweeper
from workers.celery_app import PROCESS_DOCUMENT, SWEEP, app
from workers.retry import retry_delay

log = logging.getLogger(__name__)


@app.task(bind=True, name=PROCESS_DOCUMENT, max_retries=None)
def process_document(self: Any, document_id: int, version: int) -> str:
    """Processes one document version; transient errors retry, permanent ones fail it."""
    settings = get_settings()
    try:
        return pipeline.process_document(document_id, version).status
    except PermanentEmbeddingError as error:
        pipeline.mark_failed(document_id, version, f"embedding: {error}")
        return "failed"
    except (TransientEmbeddingError, OperationalError) as error:
        retries = self.request.retries
        if retries >= settings.task_max_retries:
            pipeline.mark_failed(document_id, version, f"gave up after {retries} retries: {error}")
            return "failed"
        delay = retry_delay(
            retries,
            cap_s=settings.task_retry_backoff_max_s,
            retry_after=getattr(error, "retry_after", None),
        )
        log.warning("document %s v%s: retry in %.1fs: %s", document_id, version, delay, error)
        raise self.retry(exc=error, countdown=delay) from error
    except Exception as error:  # a bug or unparseable content: fail loudly, never loop
        log.exception("document %s v%s failed", document_id, version)
        pipeline.mark_failed(document_id, version, f"internal: {type(error).__name__}: {error}")
        return "failed"


@app.task(name=SWEEP)
def sweep() -> int:
    """Re-enqueues documents stuck in `queued` or `processing`; returns how many."""
    return sweeper.sweep_once()
