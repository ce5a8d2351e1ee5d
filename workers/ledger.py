"""The worker's ledgers and metrics: embedding requests, what each document cost, documents
finished. Rows are written in the transaction of the work they describe."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.orm import Session

from services.embedding import EmbedderRegistry, Vectors
from services.embedding.requests import RequestOutcome, RequestRecord
from services.metrics import (
    DOCUMENTS_FINISHED,
    EMBEDDING_INPUTS,
    EMBEDDING_REQUESTS,
    EMBEDDING_TOKENS,
    PROVIDER_RATE_LIMITED,
    SEARCHABLE_SECONDS,
)
from services.models import EmbeddingRequest, EmbeddingUsage
from workers.store import Written
from workers.work import DocumentWork


def record_requests(
    session: Session,
    batch_id: uuid.UUID,
    collection_id: int,
    space: str,
    records: Sequence[RequestRecord],
) -> None:
    """Appends embedding requests to the ledger."""
    if not records:
        return
    session.execute(
        insert(EmbeddingRequest),
        [
            {
                "at": r.at,
                "batch_id": batch_id,
                "collection_id": collection_id,
                "space": space,
                "inputs": r.inputs,
                "tokens": r.tokens,
                "attempts": r.attempts,
                "rate_limited": r.rate_limited,
                "latency_ms": r.latency_ms,
                "outcome": r.outcome.value,
                "error": r.error,
            }
            for r in records
        ],
    )


def count_finished(written: dict[int, float], failed: int) -> None:
    """Counts documents done (with their seconds to searchable) and failed in the metrics."""
    DOCUMENTS_FINISHED.labels("done").inc(len(written))
    DOCUMENTS_FINISHED.labels("failed").inc(failed)
    for seconds in written.values():
        SEARCHABLE_SECONDS.observe(seconds)


def observe_requests(space: str, requests: Sequence[RequestRecord]) -> None:
    """Counts finished embedding requests in this process's metrics."""
    for request in requests:
        EMBEDDING_REQUESTS.labels(space, request.outcome).inc()
        PROVIDER_RATE_LIMITED.labels(space).inc(request.rate_limited)
        if request.outcome != RequestOutcome.FAILED:
            EMBEDDING_TOKENS.labels(space).inc(request.tokens)
            EMBEDDING_INPUTS.labels(space).inc(request.inputs)


def attribute(works: Sequence[DocumentWork], known: dict[bytes, Vectors]) -> dict[int, Written]:
    """Charges each newly embedded text to the first document of the batch that has it."""
    seen: set[bytes] = set(known)
    counts: dict[int, Written] = {}
    for work in works:
        embedded = cached = tokens = 0
        for chunk in work.chunks:
            if chunk.content_hash in seen:
                cached += 1
            else:
                seen.add(chunk.content_hash)
                embedded += 1
                tokens += chunk.token_count
        counts[work.id] = Written(embedded, cached, tokens)
    return counts


def record_usage(
    session: Session,
    embedders: EmbedderRegistry,
    written: Sequence[DocumentWork],
    counts: dict[int, Written],
    batch_id: uuid.UUID | None,
    latency_ms: float,
) -> None:
    """Adds one usage row per written document: texts embedded, cache hits, tokens, batch."""
    if not written:
        return
    session.execute(
        insert(EmbeddingUsage),
        [
            {
                "collection_id": w.collection_id,
                "document_id": w.id,
                "space": embedders.get(w.embedder, w.dimensions).space,
                "inputs": counts[w.id].embedded,
                "cached": counts[w.id].cached,
                "tokens": counts[w.id].embedded_tokens,
                "latency_ms": latency_ms,
                "outcome": RequestOutcome.OK.value,
                "batch_id": batch_id,
            }
            for w in written
        ],
    )
