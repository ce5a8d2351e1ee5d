"""Quantile matching of a new space's threshold: the grounded share is kept, a monotone
change of scores carries the threshold with it, and the diagnostics say when it does not."""

from __future__ import annotations

import math
import random

import pytest

from services.spaces.threshold import MIN_QUESTIONS, match_threshold, spearman


def test_a_monotone_change_of_scores_grounds_exactly_the_same_questions() -> None:
    rng = random.Random(3)
    old = [rng.uniform(0.1, 0.8) for _ in range(300)]
    new = [0.2 + 0.9 * s**2 for s in old]  # another model: same order, other scale
    matched = match_threshold(old, new, old_threshold=0.39)
    assert matched is not None
    grounded_old = {i for i, s in enumerate(old) if s >= 0.39}
    grounded_new = {i for i, s in enumerate(new) if s >= matched.threshold}
    assert grounded_new == grounded_old
    assert matched.share_new == matched.share_old == len(grounded_old) / 300
    assert matched.spearman == pytest.approx(1.0)


def test_noisy_agreement_keeps_the_share_and_says_how_well_the_models_agree() -> None:
    rng = random.Random(5)
    old = [rng.uniform(0, 1) for _ in range(400)]
    agreeing = [s + rng.gauss(0, 0.05) for s in old]
    unrelated = [rng.uniform(0, 1) for _ in old]
    for new in (agreeing, unrelated):
        matched = match_threshold(old, new, 0.6)
        assert matched is not None
        assert abs(matched.share_new - matched.share_old) <= 1 / 400
    assert match_threshold(old, agreeing, 0.6).spearman > 0.95  # type: ignore[union-attr]
    assert abs(match_threshold(old, unrelated, 0.6).spearman) < 0.2  # type: ignore[union-attr]


def test_ties_never_ground_more_than_before() -> None:
    old = [0.5] * 20 + [0.2] * 20
    new = [0.7] * 30 + [0.1] * 10  # the cut falls inside a run of equal scores
    matched = match_threshold(old, new, 0.4)
    assert matched is not None and matched.share_old == 0.5
    assert matched.share_new <= matched.share_old and matched.threshold > 0.7


def test_none_or_all_grounded_stays_so_and_too_few_questions_give_nothing() -> None:
    old = [0.1 + i / 1000 for i in range(50)]
    new = [0.3 + i / 500 for i in range(50)]
    nothing = match_threshold(old, new, 0.9)
    assert nothing is not None and nothing.share_new == 0.0 and nothing.threshold > max(new)
    everything = match_threshold(old, new, 0.0)
    assert everything is not None and everything.share_new == 1.0
    assert everything.threshold == min(new)
    assert match_threshold(old[: MIN_QUESTIONS - 1], new[: MIN_QUESTIONS - 1], 0.1) is None
    with pytest.raises(ValueError):
        match_threshold(old, new[:-1], 0.1)


def test_spearman_of_known_series() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert math.isclose(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 0.9486832980505138)
