"""Hands committed document ids to the workers; the database stays the record of work."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from services.config import get_settings

log = logging.getLogger(__name__)


def enqueue(items: Iterable[tuple[int, int]]) -> int:
    """Sends one task per (document id, version); returns how many were sent.

    Called only after the rows are committed. If the broker is unreachable the documents stay
    `queued` in the database and the sweeper sends them again later: nothing is lost.
    """
    from workers.celery_app import PROCESS_DOCUMENT, app

    queue = get_settings().ingest_queue
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for document_id, version in items:
                app.send_task(
                    PROCESS_DOCUMENT, args=[document_id, version], queue=queue, producer=producer
                )
                sent += 1
    except Exception:
        log.exception("enqueue failed after %d tasks; the sweeper will resend the rest", sent)
    return sent
