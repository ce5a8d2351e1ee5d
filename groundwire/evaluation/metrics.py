"""Retrieval metrics and threshold calibration: pure functions over rankings and scores."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def ndcg_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain of the top `k` (linear gains, as BEIR reports)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top `k`."""
    wanted = {doc for doc, gain in relevant.items() if gain > 0}
    return len(wanted & set(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document in the top `k`, else 0."""
    for i, doc in enumerate(ranking[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def document_ranking(document_ids: Sequence[str]) -> list[str]:
    """Collapses a ranking of passages into a ranking of documents (first occurrence wins)."""
    return list(dict.fromkeys(document_ids))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    if not values:
        return math.nan
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


@dataclass(frozen=True)
class Operating:
    """What a threshold does: coverage of answerable and false grounding of unanswerable."""

    threshold: float
    coverage: float
    false_grounding: float


def operating_point(
    answerable: Sequence[float], unanswerable: Sequence[float], threshold: float
) -> Operating:
    """Coverage and false-grounding rate when best scores at or above `threshold` ground."""
    coverage = sum(s >= threshold for s in answerable) / len(answerable) if answerable else 0.0
    false = sum(s >= threshold for s in unanswerable) / len(unanswerable) if unanswerable else 0.0
    return Operating(threshold, coverage, false)


def calibrate(
    answerable: Sequence[float], unanswerable: Sequence[float], target_false_grounding: float
) -> Operating:
    """The lowest threshold whose false-grounding rate is at most the target.

    The lowest such threshold grounds the most answerable questions: it sits just above the
    best score of the first unanswerable question that must not ground.
    """
    allowed = math.floor(target_false_grounding * len(unanswerable))
    ranked = sorted(unanswerable, reverse=True)
    threshold = ranked[allowed] + 1e-6 if allowed < len(ranked) else -1.0
    return operating_point(answerable, unanswerable, threshold)
