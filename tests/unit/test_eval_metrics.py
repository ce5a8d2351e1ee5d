"""Retrieval metrics and calibration, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest

from groundwire.evaluation.metrics import (
    calibrate,
    document_ranking,
    mrr_at,
    ndcg_at,
    operating_point,
    recall_at,
)


def test_ndcg_matches_hand_computation() -> None:
    ranking = ["a", "x", "b"]
    relevant = {"a": 1, "b": 1}
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranking, relevant, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(["x", "y"], relevant, 10) == 0.0


def test_recall_and_mrr() -> None:
    assert recall_at(["x", "a", "y", "b"], {"a": 1, "b": 1}, 2) == 0.5
    assert mrr_at(["x", "y", "a"], {"a": 1}, 10) == pytest.approx(1 / 3)
    assert mrr_at(["x"], {"a": 1}, 10) == 0.0


def test_document_ranking_keeps_first_passage_of_each_document() -> None:
    assert document_ranking(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_calibration_meets_the_false_grounding_target() -> None:
    answerable = [0.9, 0.8, 0.7, 0.6, 0.5, 0.3]
    unanswerable = [0.1, 0.2, 0.25, 0.4, 0.55]
    point = calibrate(answerable, unanswerable, target_false_grounding=0.2)
    assert point.false_grounding <= 0.2 and point.threshold == pytest.approx(0.4 + 1e-6)
    assert point.coverage == pytest.approx(5 / 6)
    strict = calibrate(answerable, unanswerable, target_false_grounding=0.0)
    assert strict.false_grounding == 0.0 and strict.coverage == pytest.approx(4 / 6)
    assert operating_point(answerable, unanswerable, 0.0).coverage == 1.0
