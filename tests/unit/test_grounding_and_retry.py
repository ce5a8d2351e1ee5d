"""The relevance decision and the retry delays are pure functions."""

from __future__ import annotations

import random

from services.query.grounding import Scored, ground
from workers.retry import retry_delay


def test_ground_keeps_passing_candidates_in_rank_order() -> None:
    result = ground([Scored(0.5), Scored(0.2), Scored(0.9)], threshold=0.4, k=5)
    assert result.grounded and result.best_score == 0.9
    assert [c.score for c in result.passages] == [0.5, 0.9]


def test_ground_says_nothing_relevant_explicitly() -> None:
    result = ground([Scored(0.2), Scored(0.1)], threshold=0.4, k=5)
    assert not result.grounded and result.passages == [] and result.best_score == 0.2
    empty = ground(list[Scored](), threshold=0.4, k=5)
    assert not empty.grounded and empty.best_score is None


def test_ground_threshold_is_inclusive_and_k_bounds() -> None:
    result = ground([Scored(0.4)] * 10, threshold=0.4, k=3)
    assert result.grounded and len(result.passages) == 3


def test_retry_delay_grows_is_capped_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, base_s=1, cap_s=60, rng=rng) for n in range(10)]
    assert all(0.5 <= d <= 60 for d in delays)
    assert delays[0] <= 1 and delays[-1] >= 30
    assert retry_delay(0, base_s=1, cap_s=60, retry_after=12.5, rng=rng) == 12.5
    assert retry_delay(0, base_s=1, cap_s=60, retry_after=600, rng=rng) == 60
