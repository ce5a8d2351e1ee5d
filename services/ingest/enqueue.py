"""Hands committed document ids to the workers; the database stays the record of work."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from services.batching import pack
from services.config import get_settings

log = logging.getLogger(__name__)


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


def documents_per_task(embedder_spec: str) -> int:
    """How many documents one ingest task takes for a collection's embedder.

    A provider bills and limits per request, so its tasks take many documents, whose chunks
    then fill requests; local embedders take fewer, so that small loads still spread over
    every worker process.
    """
    settings = get_settings()
    if embedder_spec.startswith("openai:"):
        return settings.openai_ingest_batch_documents
    return settings.ingest_batch_documents


def enqueue(
    items: Sequence[tuple[int, int]],
    sizes: Sequence[int] | None = None,
    documents: int | None = None,
) -> int:
    """Sends (document id, version) pairs in ingest tasks; returns how many were sent.

    A task takes at most `documents` documents (default `ingest_batch_documents`) and
    `ingest_batch_characters` of content when `sizes` are known. Called only after the rows
    are committed. If the broker is unreachable the documents stay `queued` in the database and
    the sweeper sends them again later: nothing is lost.
    """
    from workers.celery_app import PREPARE, app

    settings = get_settings()
    per_task = max(1, documents or settings.ingest_batch_documents)
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for group in groups(items, sizes, per_task, settings.ingest_batch_characters):
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
