"""Documents go in through the API, real worker processes index them, queries find them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.api import document, ingest, query, wait_finished

pytestmark = pytest.mark.usefixtures("worker")

DOCS: list[dict[str, Any]] = [
    {
        "id": "volcanoes",
        "title": "Volcanoes",
        "text": "# Volcanoes\n\nMagma rises through the crust and erupts as lava. "
        "Basalt flows cool into dark volcanic rock.",
        "metadata": {"topic": "geology"},
    },
    {
        "id": "bread",
        "title": "Bread",
        "text": "# Bread\n\nYeast ferments the dough; kneading develops gluten so the loaf rises "
        "in the oven.",
    },
    {
        "id": "tides",
        "title": "Tides",
        "text": "# Tides\n\nThe moon's gravity pulls the oceans, producing two high tides a day.",
    },
]


def test_ingest_then_query_round_trip(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    accepted = ingest(api, name, DOCS)
    assert [d["status"] for d in accepted["documents"]] == ["queued"] * 3
    batch = wait_finished(api, accepted["batch_id"])
    assert batch["done"] == 3 and batch["failed"] == 0 and batch["total"] == 3

    doc = document(api, name, "volcanoes")
    assert doc["status"] == "done" and doc["version"] == 1 and doc["chunks"] >= 1
    assert doc["started_at"] and doc["embedded_at"] and doc["finished_at"]

    answer = query(api, name, "magma erupts as lava from volcanic basalt")
    assert answer["grounded"] is True
    top = answer["results"][0]
    assert top["document_id"] == "volcanoes" and top["title"] == "Volcanoes"
    assert top["metadata"] == {"topic": "geology"}
    assert top["score"] >= answer["threshold"]
    source_text = DOCS[0]["text"]
    assert source_text[top["chunk"]["start"] : top["chunk"]["end"]] == top["text"]

    detail = api.get(f"/v1/collections/{name}").json()
    assert detail["documents"]["done"] == 3 and detail["chunks"] >= 3


def test_unrelated_question_is_not_grounded(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    wait_finished(api, ingest(api, name, DOCS)["batch_id"])
    answer = query(api, name, "quarterly invoice reconciliation spreadsheet")
    assert answer == {
        "grounded": False,
        "mode": "hybrid",
        "threshold": answer["threshold"],
        "best_score": answer["best_score"],
        "reranked": None,
        "embedder": "hash",
        "results": [],
    }
    assert answer["best_score"] is not None and answer["best_score"] < answer["threshold"]
    everything = query(
        api, name, "quarterly invoice reconciliation spreadsheet", min_score=-1, k=10
    )
    assert everything["grounded"] is True and len(everything["results"]) == 3
    # The override returns what the threshold kept out: passages scoring below it.
    assert min(r["score"] for r in everything["results"]) < answer["threshold"]


def test_unchanged_reingest_does_no_work(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    wait_finished(api, ingest(api, name, DOCS)["batch_id"])
    before = document(api, name, "bread")
    again = ingest(api, name, DOCS)
    assert [d["status"] for d in again["documents"]] == ["unchanged"] * 3
    batch = api.get(f"/v1/batches/{again['batch_id']}").json()
    assert batch["unchanged"] == 3 and batch["finished"] is True
    # What the documents' earlier versions embedded is not this batch's work.
    assert before["embedded_chunks"] + before["cached_chunks"] == before["chunks"] > 0
    assert batch["embedded_chunks"] == 0 and batch["cached_chunks"] == 0
    after = document(api, name, "bread")
    assert after["version"] == before["version"] == 1
    assert after["attempts"] == before["attempts"] and after["finished_at"] == before["finished_at"]
    edit = f" Edited {uuid.uuid4().hex}."
    edited = [dict(d, text=d["text"] + edit) if d["id"] == "bread" else d for d in DOCS]
    mixed = wait_finished(api, ingest(api, name, edited)["batch_id"])
    bread = document(api, name, "bread")
    assert (mixed["unchanged"], mixed["done"]) == (2, 1)
    assert mixed["embedded_chunks"] == bread["embedded_chunks"] > 0
    assert mixed["cached_chunks"] == bread["cached_chunks"]


def test_delete_removes_from_queries(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    wait_finished(api, ingest(api, name, DOCS)["batch_id"])
    assert query(api, name, "yeast dough gluten loaf")["results"][0]["document_id"] == "bread"
    assert api.delete(f"/v1/collections/{name}/documents/bread").status_code == 204
    after = query(api, name, "yeast dough gluten loaf", min_score=-1, k=10)
    assert "bread" not in {r["document_id"] for r in after["results"]}
    assert api.get(f"/v1/collections/{name}/documents/bread").status_code == 404


def test_local_model_round_trip(api: Any, make_collection: Any) -> None:
    name = make_collection("local")
    wait_finished(api, ingest(api, name, DOCS)["batch_id"], timeout=120)
    answer = query(api, name, "How do volcanoes erupt?")
    assert answer["grounded"] is True
    assert answer["results"][0]["document_id"] == "volcanoes"
    assert query(api, name, "What is the capital city of Peru?")["grounded"] is False


def test_identical_text_is_embedded_once(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    original = {"id": "volcanoes", "text": f"Magma and basalt, sample {uuid.uuid4().hex}."}
    wait_finished(api, ingest(api, name, [original])["batch_id"])
    first = document(api, name, "volcanoes")
    assert first["embedded_chunks"] == first["chunks"] and first["cached_chunks"] == 0
    assert first["embedded_tokens"] > 0
    copy = dict(original, id="volcanoes-copy")
    batch = wait_finished(api, ingest(api, name, [copy])["batch_id"])
    assert batch["embedded_chunks"] == 0 and batch["cached_chunks"] == first["chunks"]
    second = document(api, name, "volcanoes-copy")
    assert second["embedded_chunks"] == 0 and second["cached_chunks"] == second["chunks"]


def test_html_is_parsed_before_chunking(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    page = (
        "<html><head><style>.x{}</style></head><body><h1>Tidal power</h1>"
        "<p>Turbines in estuaries harvest <em>tidal</em> currents &amp; store energy.</p>"
        "<script>var turbines = 1;</script></body></html>"
    )
    doc = {"id": "tides.html", "text": page, "content_type": "text/html"}
    wait_finished(api, ingest(api, name, [doc])["batch_id"])
    answer = query(api, name, "estuaries tidal turbines currents")
    top = answer["results"][0]
    assert top["text"] == (
        "# Tidal power\n\nTurbines in estuaries harvest tidal currents & store energy."
    )
    assert document(api, name, "tides.html")["content_type"] == "text/html"
    as_text = ingest(api, name, [dict(doc, content_type="text/plain")])
    assert as_text["documents"][0]["status"] == "queued", "another content type is new content"
    bad = api.post(
        f"/v1/collections/{name}/documents",
        json={"documents": [{"text": "x", "content_type": "application/pdf"}]},
    )
    assert bad.status_code == 422


def test_a_halfvec_collection_answers_as_a_full_precision_one(
    api: Any, make_collection: Any
) -> None:
    """The same documents in a `vector` and a `halfvec` collection: the same passages,
    scores equal to half precision's rounding."""
    full, half = make_collection("hash"), make_collection("hash", vector_storage="halfvec")
    assert api.get(f"/v1/collections/{half}").json()["vector_storage"] == "halfvec"
    for name in (full, half):
        wait_finished(api, ingest(api, name, DOCS)["batch_id"])
    for question in ("lighthouse keepers", "quarterly invoice reconciliation spreadsheet"):
        a, b = (query(api, n, question, min_score=-1, mode="vector") for n in (full, half))
        assert len(a["results"]) >= 2
        assert [r["document_id"] for r in a["results"]] == [r["document_id"] for r in b["results"]]
        for x, y in zip(a["results"], b["results"], strict=True):
            assert abs(x["score"] - y["score"]) < 2e-3
    refused = api.post("/v1/collections", json={"name": "t-bad-storage", "vector_storage": "int8"})
    assert refused.status_code == 422
