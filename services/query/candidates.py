"""What retrieval returns for one chunk: plain data shared by retrieval, grounding and context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.query.grounding import Scored

Mode = Literal["hybrid", "vector", "keyword"]


@dataclass(frozen=True)
class Candidate(Scored):
    """A chunk close to the query, with what a citation needs."""

    rank_score: float
    document_id: str
    title: str | None
    source: str | None
    text: str
    ordinal: int
    start: int
    end: int
    metadata: dict[str, Any]
    content_hash: bytes
    # Where it sits in its original: {"page": n}, {"start_seconds", "end_seconds"} or None.
    location: dict[str, Any] | None = None
    # The reranker's score, where the rerank stage reordered it.
    rerank_score: float | None = None
