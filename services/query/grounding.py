"""The relevance decision: a pure function from ranked candidates to a grounded answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar


@dataclass(frozen=True)
class Scored:
    """Anything with a similarity score (cosine similarity to the question)."""

    score: float


T = TypeVar("T", bound=Scored)


@dataclass(frozen=True)
class Grounding(Generic[T]):
    """Candidates at or above the threshold, the best score seen, and the threshold used."""

    grounded: bool
    threshold: float
    best_score: float | None
    passages: list[T]
    # None: no rerank asked; False: asked, but the reranker failed or ran out of time.
    reranked: bool | None = None
    embedder: str | None = None  # the embedder of the space searched


def ground(ranked: Sequence[T], threshold: float, k: int) -> Grounding[T]:
    """Keeps, in rank order, the first `k` candidates scoring at least `threshold`.

    No candidate passing means an explicit "nothing relevant" answer, reported with the best
    score seen so a caller can tell a near miss from a question far from every document.
    """
    best = max((c.score for c in ranked), default=None)
    passing = [c for c in ranked if c.score >= threshold][:k]
    return Grounding(bool(passing), threshold, best, passing)
