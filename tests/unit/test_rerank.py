"""The rerank stage's pure parts and its in-process cross-encoder: reordering, the three API
formats, the models folder's checks, and an ONNX model stopped at its budget."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.api.errors import ApiError
from services.config import Settings
from services.local_models.folder import ModelFolderError, model_folder
from services.query.candidates import Candidate
from services.rerank.base import RerankError
from services.rerank.http_api import parse_scores, request_body
from services.rerank.onnx_model import OnnxCrossEncoder
from services.rerank.service import RerankStage, build_stage, chosen, reorder, rerank
from tests.support.cross_encoders import word_counter


def candidate(text: str, score: float = 0.5) -> Candidate:
    return Candidate(
        score=score,
        rank_score=score,
        document_id=text,
        title=None,
        source=None,
        text=text,
        ordinal=0,
        start=0,
        end=len(text),
        metadata={},
        content_hash=b"",
    )


def test_reorder_sorts_the_scored_head_and_keeps_the_tail() -> None:
    passages = [candidate(t) for t in "abcde"]
    ranked = reorder(passages, [0.1, 0.9, 0.5, 0.9])
    assert [p.text for p in ranked] == ["b", "d", "c", "a", "e"]  # a tie keeps its order
    assert [p.rerank_score for p in ranked] == [0.9, 0.9, 0.5, 0.1, None]


def test_request_bodies_of_each_format() -> None:
    assert request_body("tei", "m", "q", ["a", "b"]) == {
        "query": "q",
        "texts": ["a", "b"],
        "truncate": True,
        "raw_scores": False,
    }
    assert request_body("cohere", "rerank-v3.5", "q", ["a"]) == {
        "query": "q",
        "documents": ["a"],
        "top_n": 1,
        "model": "rerank-v3.5",
    }
    assert request_body("jina", None, "q", ["a"])["return_documents"] is False


def test_answers_are_read_in_the_texts_order_and_malformed_ones_refused() -> None:
    assert parse_scores("tei", [{"index": 1, "score": 0.7}, {"index": 0, "score": 0.2}], 2) == [
        0.2,
        0.7,
    ]
    results = {"results": [{"index": 1, "relevance_score": 3}, {"index": 0, "relevance_score": 1}]}
    assert parse_scores("cohere", results, 2) == [1.0, 3.0]
    for fmt, answer, count in [
        ("tei", {"results": []}, 1),
        ("tei", [{"index": 2, "score": 0.1}], 2),
        ("tei", [{"index": 0, "score": float("nan")}], 1),
        ("tei", [{"index": True, "score": 0.1}], 1),
        ("jina", {"results": [{"index": 0, "relevance_score": 0.3}]}, 2),  # one left out
        ("cohere", [{"index": 0, "score": 0.1}], 1),
    ]:
        with pytest.raises(RerankError) as error:
            parse_scores(fmt, answer, count)  # type: ignore[arg-type]
        assert error.value.reason == "invalid"


def test_a_request_reranks_when_asked_or_by_the_collection_default() -> None:
    stage = RerankStage(reranker=None, budget_s=1.0, depth=10)  # type: ignore[arg-type]
    assert chosen(stage, None, True) is stage and chosen(stage, None, False) is None
    assert chosen(stage, True, False) is stage and chosen(stage, False, True) is None
    assert chosen(None, None, True) is None  # a default with no reranker is skipped
    with pytest.raises(ApiError) as refused:
        chosen(None, True, False)
    assert refused.value.status == 422 and refused.value.code == "rerank_not_configured"


class Failing:
    name = "failing"

    def scores(self, query: str, texts: Sequence[str], deadline: float) -> list[float]:
        raise RerankError("unavailable", "down")

    def close(self) -> None:
        pass


def test_a_failing_reranker_leaves_the_retrieval_order() -> None:
    passages = [candidate(t) for t in "abc"]
    kept, reranked = rerank(RerankStage(Failing(), 1.0, 10), "q", passages)
    assert kept == passages and reranked is False


def test_an_onnx_cross_encoder_from_the_models_folder(tmp_path: Path) -> None:
    word_counter(tmp_path, "ferry-counter", "ferry")
    model = OnnxCrossEncoder(tmp_path, "ferry-counter", threads=1)
    texts = ["no boats today", "a ferry, then a ferry", "one ferry", "ferry " * 4]
    assert model.scores("ferry times", texts, time.monotonic() + 10) == [0.0, 2.0, 1.0, 4.0]
    stage = RerankStage(model, 10.0, depth=3)
    ranked, reranked = rerank(stage, "ferry", [candidate(t) for t in texts])
    assert reranked and [p.text for p in ranked] == [texts[1], texts[2], texts[0], texts[3]]
    # Built from the settings, by name.
    settings = Settings.from_env({}, rerank_model="local:ferry-counter", models_dir=tmp_path)
    built = build_stage(settings)
    assert built is not None and built.reranker.name == "local:ferry-counter"
    assert built.depth == 30 and built.budget_s == 1.0


def test_a_run_past_the_budget_is_stopped(tmp_path: Path) -> None:
    word_counter(tmp_path, "slow", "ferry", slow=True)
    model = OnnxCrossEncoder(tmp_path, "slow", threads=1)
    started = time.monotonic()
    with pytest.raises(RerankError) as error:
        model.scores("ferry", ["a ferry"], time.monotonic() + 0.3)
    assert error.value.reason == "timeout"
    assert time.monotonic() - started < 1.5  # the whole run takes seconds


def test_the_models_folder_is_checked(tmp_path: Path) -> None:
    folder = word_counter(tmp_path, "ok", "ferry")
    assert model_folder(tmp_path, "ok", "reranker")[0] == folder
    for name, problem in [("../ok", "not a folder name"), ("absent", "does not exist")]:
        with pytest.raises(ModelFolderError, match=problem):
            model_folder(tmp_path, name, "reranker")
    with pytest.raises(ModelFolderError, match="has kind 'reranker', not 'embedder'"):
        model_folder(tmp_path, "ok", "embedder")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(replace_sha(manifest, "model.onnx", "0" * 64)))
    with pytest.raises(ModelFolderError, match=r"model\.onnx has sha256 .* the manifest says 0000"):
        model_folder(tmp_path, "ok", "reranker")
    with pytest.raises(ModelFolderError, match="sha256"):
        build_stage(Settings.from_env({}, rerank_model="local:ok", models_dir=tmp_path))
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"manifest\.json is not valid"):
        model_folder(tmp_path, "ok", "reranker")


def replace_sha(manifest: dict[str, object], file: str, digest: str) -> dict[str, object]:
    sha = dict(manifest["sha256"])  # type: ignore[call-overload]
    sha[file] = digest
    return {**manifest, "sha256": sha}


def test_a_model_name_without_a_url_is_refused() -> None:
    with pytest.raises(ValueError, match="GROUNDWIRE_RERANK_URL"):
        build_stage(Settings.from_env({}, rerank_model="rerank-v3.5"))
    assert build_stage(Settings.from_env({})) is None
