"""What every reranker does, and how it fails."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, Protocol

FailureReason = Literal["timeout", "unavailable", "invalid"]


class RerankError(RuntimeError):
    """The reranker gave no usable scores: the retrieval order stands."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Reranker(Protocol):
    """Scores each text's relevance to the query (higher is more relevant)."""

    name: str

    def scores(self, query: str, texts: Sequence[str], deadline: float) -> list[float]:
        """Returns one score per text, or raises RerankError; gives up at `deadline`
        (a `time.monotonic()` value)."""
        ...

    def close(self) -> None:
        """Releases what it holds (connections)."""
        ...


def remaining(deadline: float) -> float:
    """Seconds left before `deadline`; RerankError("timeout") when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise RerankError("timeout", "the rerank budget ran out")
    return left
