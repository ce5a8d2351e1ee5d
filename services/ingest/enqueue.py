"""Hands committed document ids to the workers; the database stays the record of work."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice

from services.config import get_settings

log = logging.getLogger(__name__)


def groups(items: Iterable[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    """Yields consecutive lists of at most `size` items."""
    it = iter(items)
    while group := list(islice(it, max(1, size))):
        yield group


def enqueue(items: Iterable[tuple[int, int]]) -> int:
    """Sends (document id, version) pairs in tasks of `ingest_batch_documents`; returns how many.

    Called only after the rows are committed. If the broker is unreachable the documents stay
    `queued` in the database and the sweeper sends them again later: nothing is lost.
    """
    from workers.celery_app import PREPARE, app

    settings = get_settings()
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for group in groups(items, settings.ingest_batch_documents):
                app.send_task(
                    PREPARE,
                    args=[[[i, v] for i, v in group]],
                    queue=settings.ingest_queue,
                    producer=producer,
                )
                sent += len(group)
    except Exception:
        log.exception("enqueue failed after %d documents; the sweeper will resend the rest", sent)
    return sent
