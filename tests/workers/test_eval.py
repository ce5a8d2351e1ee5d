"""`groundwire eval` on a tiny BEIR dataset made here, through the real API and workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from groundwire.evaluation import beir
from groundwire.evaluation.runner import (
    EvalError,
    compare_spaces,
    evaluate,
    format_comparison,
    format_report,
)
from services.app import create_app
from services.runtime import Runtime
from workers import space_driver

pytestmark = pytest.mark.usefixtures("worker")

CORPUS = {
    "d1": ("Volcanoes", "Magma rises through the crust and erupts as lava from volcanoes."),
    "d2": ("Bread", "Yeast ferments dough; kneading develops gluten so the loaf rises."),
    "d3": ("Tides", "The moon's gravity pulls the oceans and produces tides twice a day."),
    "d4": ("Glaciers", "Glaciers carve valleys as ice flows downhill under its own weight."),
}
QUERIES = {
    "q1": "volcanoes erupt lava magma",
    "q2": "yeast dough gluten loaf",
    "q3": "moon gravity oceans tides",
    "q4": "glaciers carve valleys ice",
}
UNANSWERABLE = ["who painted the mona lisa", "price of copper futures", "best chess opening"]


def make_dataset(root: Path) -> Path:
    root.mkdir()
    with (root / "corpus.jsonl").open("w") as f:
        for doc_id, (title, text) in CORPUS.items():
            f.write(json.dumps({"id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as f:
        for qid, text in QUERIES.items():
            f.write(json.dumps({"id": qid, "text": text}) + "\n")
    (root / "qrels.tsv").write_text(
        "query-id\tdoc-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(1, 5))
    )
    with (root / "unanswerable.jsonl").open("w") as f:
        for i, text in enumerate(UNANSWERABLE):
            f.write(json.dumps({"id": f"u{i}", "text": text, "expected": "abstain"}) + "\n")
    return root


def test_eval_measures_modes_and_calibrates(api: Any, tmp_path: Path) -> None:
    data = beir.load(make_dataset(tmp_path / "tiny"))
    report = evaluate(
        api, data, "eval-tiny", embedder="hash", target_false_grounding=0.0, write_threshold=True
    )
    assert report.failed_documents == 0 and report.documents == 4 and report.chunks == 4
    assert [m.mode for m in report.modes] == ["hybrid", "vector", "keyword"]
    for mode in report.modes:
        # Each query shares its words with exactly one document: every mode ranks it first.
        assert mode.queries == 4
        assert mode.ndcg_at_10 == pytest.approx(1.0) and mode.mrr_at_10 == pytest.approx(1.0)
        assert mode.recall_at_10 == pytest.approx(1.0)
    assert report.calibrated is not None and report.calibrated.false_grounding == 0.0
    assert report.calibrated.coverage == 1.0
    stored = api.get("/v1/collections/eval-tiny").json()["threshold"]
    assert stored == pytest.approx(report.calibrated.threshold)
    table = format_report(report)
    assert "nDCG@10" in table and "calibrated threshold" in table

    again = evaluate(api, data, "eval-tiny", modes=["vector"])
    assert again.modes[0].ndcg_at_10 == pytest.approx(1.0)


def test_eval_counts_answer_statuses(api: Any, tmp_path: Path, fake_openai: Any) -> None:
    fake_openai.reset()
    data = beir.load(make_dataset(tmp_path / "tiny-answers"))
    report = evaluate(api, data, "eval-answers", embedder="hash", modes=["hybrid"], answers=True)
    assert report.answers_answerable is not None and report.answers_unanswerable is not None
    assert report.answers_answerable.statuses == {"answered": 4}
    unanswerable = report.answers_unanswerable
    assert unanswerable.statuses == {"no_context": 3} and unanswerable.abstained == 1.0
    assert len(fake_openai.chats) == 4  # never for the unanswerable ones
    assert "answers, unanswerable" in format_report(report)


def test_eval_measures_each_mode_with_and_without_rerank(
    tmp_path: Path, fake_openai: Any, settings: Any, admin_headers: dict[str, str]
) -> None:
    """Retrieval ranks short pages repeating the question's words over the long page that
    answers it; the stand-in cross-encoder (the share of the question's words a page holds)
    puts that page first."""
    fake_openai.reset()
    root = tmp_path / "ferries"
    root.mkdir()
    pages = {
        "long": "Timetable notes: the winter season on the island, every ferry from the harbour,"
        " with parking, cafes, opening hours, bicycle hire, luggage rules, pets and tickets.",
        "short": "Harbour ferry. Harbour ferry. Island ferry.",
        "shorter": "Winter ferry harbour.",
    }
    with (root / "corpus.jsonl").open("w") as f:
        for doc_id, text in pages.items():
            f.write(json.dumps({"id": doc_id, "title": "", "text": text}) + "\n")
    (root / "queries.jsonl").write_text(
        json.dumps({"id": "q1", "text": "winter timetable island ferry harbour"}) + "\n"
    )
    (root / "qrels.tsv").write_text("query-id\tdoc-id\tscore\nq1\tlong\t1\n")
    origin = fake_openai.base_url.removesuffix("/v1")
    configured = settings.model_copy(update={"rerank_url": f"{origin}/rerank"})
    with TestClient(create_app(configured), headers=admin_headers) as client:
        api: Any = client  # a TestClient is driven like the httpx client the CLI passes
        report = evaluate(
            api, beir.load(root), "eval-rerank", embedder="hash", modes=["hybrid"], rerank=True
        )
    plain, reranked = report.modes
    assert (plain.mode, reranked.mode) == ("hybrid", "hybrid+rerank")
    assert reranked.reranked and reranked.rerank_fallbacks == 0
    assert reranked.ndcg_at_10 == pytest.approx(1.0)
    assert plain.ndcg_at_10 < 0.9
    assert reranked.latency_p50_ms > 0 and len(fake_openai.reranks) == 1
    assert "hybrid+rerank" in format_report(report)


def test_eval_compares_the_shadow_space_and_records_it(
    api: Any, tmp_path: Path, runtime: Runtime
) -> None:
    """`--space shadow`: both spaces measured side by side, nothing ingested, the result and
    its calibrated threshold recorded on the migration (method `eval`)."""
    data = beir.load(make_dataset(tmp_path / "tiny"))
    evaluate(api, data, "eval-shadow", embedder="hash", modes=["hybrid"])
    with pytest.raises(EvalError, match="no migration building"):
        compare_spaces(api, data, "eval-shadow", data_name="tiny", modes=["hybrid"])
    started = api.post("/v1/collections/eval-shadow/migrations", json={"embedder": "hash:64"})
    assert started.status_code == 202, started.text
    with space_driver.ticking(runtime):
        report = compare_spaces(
            api, data, "eval-shadow", data_name="tiny", modes=["hybrid", "keyword"],
            target_false_grounding=0.0,
        )  # fmt: skip
    assert (
        [m.mode for m in report.active] == [m.mode for m in report.shadow] == ["hybrid", "keyword"]
    )
    assert report.shadow[0].ndcg_at_10 > 0.9  # the words of each question are in its document
    assert report.calibrated is not None and report.calibrated.false_grounding == 0.0
    assert report.active_at_threshold is not None and report.recorded
    text = format_comparison(report)
    assert "shadow calibrated" in text and "active" in text
    migration = api.get(f"/v1/collections/eval-shadow/migrations/{started.json()['id']}").json()
    assert migration["comparison"]["data"] == "tiny"
    assert migration["threshold"]["method"] == "eval"
    assert migration["threshold"]["new"] == pytest.approx(report.calibrated.threshold)
    documents = api.get("/v1/collections/eval-shadow").json()["documents"]
    assert documents["done"] == 4 and documents["queued"] == 0, documents
    assert api.get("/v1/collections/eval-shadow/documents/d1").json()["version"] == 1
