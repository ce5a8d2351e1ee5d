"""The relevance decision: a pure function from scored candidates to a grounded answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar


@dataclass(frozen=True)
class Scored:
    """Anything with a similarity score."""

    score: float


T = TypeVar("T", bound=Scored)


@dataclass(frozen=True)
class Grounding(Generic[T]):
    """Candidates at or above the threshold, the best score seen, and the threshold used."""

    grounded: bool
    threshold: float
    best_score: float | None
    passages: list[T]


def ground(candidates: Sequence[T], threshold: float, k: int) -> Grounding[T]:
    """Keeps the top `k` candidates scoring at least `threshold`; none means not grounded."""
    ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
    best = ranked[0].score if ranked else None
    passing = [c for c in ranked if c.score >= threshold][:k]
    return Grounding(bool(passing), threshold, best, passing)
