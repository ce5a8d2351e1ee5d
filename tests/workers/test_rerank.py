"""Reranking through the API: a `/rerank` server in each of its formats (the stand-in plays a
cross-encoder), an operator's ONNX cross-encoder from a models folder, the collection default,
and the retrieval order kept when the reranker fails or runs past its budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from services.config import Settings
from tests.support.api import ingest, wait_finished
from tests.support.cross_encoders import word_counter
from tests.support.openai_server import FakeOpenAI, rerank_score

pytestmark = pytest.mark.usefixtures("worker")

# Retrieval ranks short passages repeating the question's words first; the stand-in
# cross-encoder ranks by the share of the question's words a passage holds, so the long page
# holding all of them comes first.
DOCUMENTS = [
    {"id": "long", "text": "Timetable notes: this long page covers the winter season on the"
                           " island, with every ferry from the harbour, and also parking,"
                           " cafes, opening hours, bicycle hire, luggage rules, pets,"
                           " accessibility, tickets, refunds, weather warnings and lost"
                           " property."},
    {"id": "repeats", "text": "Harbour ferry. Harbour ferry. Harbour ferry."},
    {"id": "island", "text": "Island ferry harbour."},
    {"id": "winter", "text": "Winter ferry."},
    {"id": "fares", "text": "Fares for the island ferry are paid at the harbour office."},
]  # fmt: skip
QUESTION = "winter timetable island ferry harbour"


@pytest.fixture(scope="module")
def ferries(api_module: TestClient) -> str:
    name = "rerank-ferry-pages"
    created = api_module.post("/v1/collections", json={"name": name, "embedder": "hash"})
    assert created.status_code in (201, 409), created.text
    wait_finished(api_module, ingest(api_module, name, DOCUMENTS)["batch_id"])
    return name


@pytest.fixture
def reranker(fake_openai: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_openai.reset()
    yield fake_openai
    fake_openai.reset()


def with_reranker(settings: Settings, fake: FakeOpenAI, **more: Any) -> Settings:
    origin = fake.base_url.removesuffix("/v1")
    return settings.model_copy(update={"rerank_url": f"{origin}/rerank", **more})


def ids(body: dict[str, Any]) -> list[str]:
    return [r["document_id"] for r in body["results"]]


def query(api: TestClient, name: str, **body: Any) -> dict[str, Any]:
    answer = api.post(
        f"/v1/collections/{name}/query", json={"query": QUESTION, "min_score": -1, **body}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def by_stand_in(body: dict[str, Any]) -> list[str]:
    """The results' documents in the stand-in cross-encoder's order."""
    texts = {r["document_id"]: r["text"] for r in body["results"]}
    return sorted(texts, key=lambda d: -rerank_score(QUESTION, texts[d]))


@pytest.mark.parametrize(
    ("fmt", "path", "model"),
    [("tei", "/rerank", None), ("cohere", "/v2/rerank", "rerank-v3.5"), ("jina", "/v1/rerank",
     "jina-reranker-v2-base-multilingual")],
)  # fmt: skip
def test_a_rerank_api_reorders_the_passages(
    ferries: str,
    reranker: FakeOpenAI,
    settings: Settings,
    admin_headers: dict[str, str],
    fmt: str,
    path: str,
    model: str | None,
) -> None:
    origin = reranker.base_url.removesuffix("/v1")
    configured = settings.model_copy(
        update={"rerank_url": origin + path, "rerank_format": fmt, "rerank_model": model}
    )
    with TestClient(create_app(configured), headers=admin_headers) as api:
        plain = query(api, ferries, k=5)
        assert plain["reranked"] is None and reranker.reranks == []
        ranked = query(api, ferries, k=5, rerank=True)
    assert ranked["reranked"] is True
    assert ids(ranked) == by_stand_in(ranked) != ids(plain)
    assert sorted(ids(ranked)) == sorted(ids(plain))
    scores = [r["rerank_score"] for r in ranked["results"]]
    assert scores == sorted(scores, reverse=True) and None not in scores
    # cosine scores and the threshold are retrieval's, whatever the order
    assert {r["document_id"]: r["score"] for r in ranked["results"]} == {
        r["document_id"]: r["score"] for r in plain["results"]
    }
    (seen,) = reranker.reranks
    assert seen["path"] == path and seen["body"]["query"] == QUESTION
    texts = seen["body"]["texts" if fmt == "tei" else "documents"]
    assert sorted(texts) == sorted(r["text"] for r in plain["results"])
    if fmt != "tei":
        assert seen["body"]["model"] == model and seen["body"]["top_n"] == len(texts)


def test_only_passages_over_the_threshold_are_reranked_and_k_is_kept(
    ferries: str, reranker: FakeOpenAI, settings: Settings, admin_headers: dict[str, str]
) -> None:
    with TestClient(create_app(with_reranker(settings, reranker)), headers=admin_headers) as api:
        everything = query(api, ferries, k=5)
        cut = sorted(r["score"] for r in everything["results"])[2]  # three pass
        ranked = query(api, ferries, k=2, rerank=True, min_score=cut)
        nothing = query(api, ferries, k=2, rerank=True, min_score=0.99)
    (seen,) = reranker.reranks
    assert len(seen["body"]["texts"]) == 3  # not the two under the threshold
    assert len(ranked["results"]) == 2 and all(r["score"] >= cut for r in ranked["results"])
    assert nothing["grounded"] is False and nothing["results"] == []


@pytest.mark.parametrize(
    "fault", [{"rerank_latency_s": 3.0}, {"rerank_status": 503}, {"rerank_malformed": True}]
)
def test_a_failing_or_slow_reranker_leaves_the_retrieval_order(
    ferries: str,
    reranker: FakeOpenAI,
    settings: Settings,
    admin_headers: dict[str, str],
    fault: dict[str, Any],
) -> None:
    configured = with_reranker(settings, reranker, rerank_budget_ms=300)
    with TestClient(create_app(configured), headers=admin_headers) as api:
        plain = query(api, ferries, k=5)
        reranker.reset(**fault)
        started = time.monotonic()
        fallen_back = query(api, ferries, k=5, rerank=True)
        took = time.monotonic() - started
    assert fallen_back["reranked"] is False and ids(fallen_back) == ids(plain)
    assert all(r["rerank_score"] is None for r in fallen_back["results"])
    assert len(reranker.reranks) == 1
    assert took < 2.5  # the budget, not the 3 s the slow reranker takes


def test_rerank_without_a_reranker_is_refused(
    api: TestClient, ferries: str, make_collection: Any
) -> None:
    refused = api.post(f"/v1/collections/{ferries}/query", json={"query": QUESTION, "rerank": True})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "rerank_not_configured"
    name = make_collection()
    patched = api.patch(f"/v1/collections/{name}", json={"rerank": True})
    assert patched.status_code == 422 and "reranker" in patched.json()["error"]["message"]
    assert api.patch(f"/v1/collections/{name}", json={"rerank": None}).status_code == 422
    assert (
        api.post(
            f"/v1/collections/{ferries}/query", json={"query": QUESTION, "rerank": False}
        ).json()["reranked"]
        is None
    )


def test_the_collection_default_context_answer_and_query_log(
    reranker: FakeOpenAI, settings: Settings, admin_headers: dict[str, str], database_url: str
) -> None:
    name = "rerank-default"
    with TestClient(create_app(with_reranker(settings, reranker)), headers=admin_headers) as api:
        assert api.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code in (
            201,
            409,
        )
        wait_finished(api, ingest(api, name, DOCUMENTS)["batch_id"])
        patched = api.patch(f"/v1/collections/{name}", json={"rerank": True})
        assert patched.status_code == 200 and patched.json()["rerank"] is True
        by_default = query(api, name, k=5)
        assert by_default["reranked"] is True and ids(by_default) == by_stand_in(by_default)
        assert query(api, name, k=5, rerank=False)["reranked"] is None
        context = api.post(
            f"/v1/collections/{name}/context", json={"query": QUESTION, "min_score": -1}
        ).json()
        assert context["reranked"] is True
        assert [c["document_id"] for c in context["citations"]][:3] == ids(by_default)[:3]
        answer = api.post(
            f"/v1/collections/{name}/answer", json={"query": QUESTION, "min_score": -1}
        ).json()
        assert answer["reranked"] is True and answer["status"] == "answered", answer
        # [1] is the reranker's first passage
        assert answer["citations"][0]["document_id"] == ids(by_default)[0]
    with psycopg.connect(database_url) as conn:
        logged = conn.execute(
            "SELECT endpoint, reranked FROM analytics.queries WHERE collection = %s"
            " ORDER BY query_id",
            [name],
        ).fetchall()
    assert logged == [
        ("query", True),
        ("query", None),
        ("context", True),
        ("answer", True),
    ]


def test_an_operators_onnx_cross_encoder(
    ferries: str, settings: Settings, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    word_counter(tmp_path, "ferry-counter", "ferry")
    configured = settings.model_copy(
        update={"rerank_model": "local:ferry-counter", "models_dir": tmp_path}
    )
    with TestClient(create_app(configured), headers=admin_headers) as api:
        ranked = query(api, ferries, k=5, rerank=True)
    assert ranked["reranked"] is True
    counts = [r["text"].lower().count("ferry") for r in ranked["results"]]
    assert counts == sorted(counts, reverse=True)
    assert [r["rerank_score"] for r in ranked["results"]] == [float(c) for c in counts]
