"""The query log: one row per query or context request, for analysts and knowledge-gap reports.

What is kept of the question follows `query_log` in the settings, passed in as `keep`: `text`
(the question and its hash), `hash` (only a SHA-256 of the normalised question, enough to
count repeats), or `off` (neither; volumes, scores and latencies are still logged).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from services.models import QueryLogEntry

QueryLogPolicy = Literal["text", "hash", "off"]


def normalise_question(question: str) -> str:
    """Lower-cases and collapses whitespace, so trivially different spellings count as one."""
    return " ".join(question.lower().split())


def question_hash(question: str) -> str:
    """SHA-256 (hex) of the normalised question."""
    return hashlib.sha256(normalise_question(question).encode("utf-8")).hexdigest()


def record_query(
    session: Session,
    *,
    keep: QueryLogPolicy,
    collection_id: int,
    endpoint: str,
    question: str,
    mode: str,
    k: int,
    metadata_filter: dict[str, Any] | None,
    best_score: float | None,
    threshold: float,
    grounded: bool,
    results: int,
    latency_ms: float,
    reranked: bool | None = None,
    answer: dict[str, Any] | None = None,
) -> None:
    """Adds one query to the log, in the caller's transaction, keeping what `keep` says.

    The transaction commits without waiting for its WAL flush: a crash may lose the last few
    log rows (never accepted documents), and a query does not pay a disk flush for its log.
    """
    session.execute(text("SET LOCAL synchronous_commit = off"))
    session.execute(
        insert(QueryLogEntry).values(
            collection_id=collection_id,
            endpoint=endpoint,
            query_text=question if keep == "text" else None,
            query_hash=question_hash(question) if keep in ("text", "hash") else None,
            mode=mode,
            k=k,
            filter=metadata_filter,
            best_score=best_score,
            threshold=threshold,
            grounded=grounded,
            results=results,
            latency_ms=latency_ms,
            reranked=reranked,
            **(answer or {}),
        )
    )
