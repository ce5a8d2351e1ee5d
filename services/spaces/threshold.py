"""A new embedding space's relevance threshold without labels, by quantile matching: the
threshold under which the same share of the collection's logged questions is grounded as
under the old space and its threshold. Pure functions.

Why it is sound: a threshold turns each question's best score into grounded / not grounded.
If the new model orders the questions' best scores as the old one did (any increasing map
from old scores to new ones), the question at the old threshold's quantile sits at the same
quantile under the new model, so the new score there grounds exactly the same questions. No
label is needed because what is carried over is a decision already taken, not its
correctness: a threshold that was well calibrated stays so, a bad one stays as bad.

When it is not: when the two models disagree on which questions have an answer (their best
scores are weakly correlated, `spearman` below), when the log is small or unlike the
questions to come, or when the new space should ground more (a better model) rather than
the same share. `groundwire eval` data, where a collection has it, beats this; with neither,
the new embedder's default threshold is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_QUESTIONS = 30  # fewer logged questions than this: no quantile worth matching


@dataclass(frozen=True)
class Matched:
    """The new threshold and how it was found: the grounded share under the old space and
    under the new one with this threshold, the questions it was matched on, and the rank
    correlation of their best scores under the two spaces (near 1: the method holds)."""

    threshold: float
    share_old: float
    share_new: float
    questions: int
    spearman: float


def _ranks(values: Sequence[float]) -> list[float]:
    """Average ranks (ties share theirs), 1-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long series (0 when either is constant)."""
    if len(a) != len(b):
        raise ValueError("the series differ in length")
    ra, rb = _ranks(a), _ranks(b)
    mean = (len(a) + 1) / 2
    cov = sum((x - mean) * (y - mean) for x, y in zip(ra, rb, strict=True))
    var_a = sum((x - mean) ** 2 for x in ra)
    var_b = sum((y - mean) ** 2 for y in rb)
    if var_a == 0 or var_b == 0:
        return 0.0
    return cov / math.sqrt(var_a * var_b)


def match_threshold(
    old_best: Sequence[float], new_best: Sequence[float], old_threshold: float
) -> Matched | None:
    """The threshold for the new space that grounds the share of questions the old one did.

    `old_best[i]` and `new_best[i]` are question i's best score under each space. Returns
    None with fewer than MIN_QUESTIONS questions. The threshold is placed between the new
    scores on either side of the cut (their midpoint), so no question sits on it.
    """
    if len(old_best) != len(new_best):
        raise ValueError("each question needs its best score under both spaces")
    n = len(old_best)
    if n < MIN_QUESTIONS:
        return None
    grounded = sum(score >= old_threshold for score in old_best)
    ordered = sorted(new_best, reverse=True)
    if grounded == 0:
        threshold = math.nextafter(ordered[0], math.inf)  # nothing grounded, as before
    elif grounded == n:
        threshold = ordered[-1]  # everything grounded, as before
    else:
        threshold = (ordered[grounded - 1] + ordered[grounded]) / 2
        if threshold == ordered[grounded]:  # ties across the cut: keep the old share or less
            threshold = math.nextafter(ordered[grounded], math.inf)
    share_new = sum(score >= threshold for score in new_best) / n
    return Matched(
        threshold=float(threshold),
        share_old=grounded / n,
        share_new=share_new,
        questions=n,
        spearman=spearman(old_best, new_best),
    )
