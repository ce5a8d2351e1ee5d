"""Filtered retrieval returns k matches even when few chunks match; context is packed and cited."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from psycopg import sql

from services.db import Database, driver_connection
from services.embedding.hash import HashEmbedder
from services.models import Collection
from services.query.retrieval import search
from tests.support.api import ingest, query, wait_finished

pytestmark = pytest.mark.usefixtures("worker")

META_DOCS = [
    {
        "id": "a",
        "text": "alpha report",
        "metadata": {"year": 2019, "lang": "en", "date": "2019-05-01"},
    },
    {"id": "b", "text": "beta report", "metadata": {"year": 2021, "lang": "de", "reviewed": True}},
    {
        "id": "c",
        "text": "gamma report",
        "metadata": {"year": 2023, "lang": "en", "date": "2023-02-10"},
    },
    {"id": "d", "text": "delta report", "metadata": {"year": "unknown", "lang": "fr"}},
]


def ids(api: Any, name: str, spec: Any) -> set[str]:
    answer = query(api, name, "report", k=100, min_score=-1, mode="vector", filter=spec)
    return {r["document_id"] for r in answer["results"]}


def test_filter_operators(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    wait_finished(api, ingest(api, name, META_DOCS)["batch_id"])
    assert ids(api, name, {"lang": "en"}) == {"a", "c"}
    assert ids(api, name, {"lang": {"$ne": "en"}}) == {"b", "d"}
    assert ids(api, name, {"lang": {"$in": ["de", "fr"]}}) == {"b", "d"}
    assert ids(api, name, {"year": {"$gte": 2020, "$lt": 2024}}) == {"b", "c"}
    assert ids(api, name, {"date": {"$gte": "2020-01-01"}}) == {"c"}
    assert ids(api, name, {"reviewed": {"$exists": True}}) == {"b"}
    assert ids(api, name, {"$or": [{"lang": "fr"}, {"year": {"$lt": 2020}}]}) == {"a", "d"}
    assert ids(api, name, {"$not": {"lang": "en"}}) == {"b", "d"}
    assert ids(api, name, {"lang": "en", "year": {"$gt": 2020}}) == {"c"}
    for mode in ("hybrid", "keyword"):
        answer = query(api, name, "report", k=100, min_score=-1, mode=mode, filter={"lang": "en"})
        assert {r["document_id"] for r in answer["results"]} == {"a", "c"}

    bad = api.post(
        f"/v1/collections/{name}/query", json={"query": "x", "filter": {"y": {"$near": 1}}}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_filter"


def test_rare_filter_still_returns_k_from_the_hnsw_index(
    api: Any, make_collection: Any, db: Database
) -> None:
    name = make_collection("hash")
    rng = random.Random(7)
    words = [f"{a}{b}" for a in ("harbour", "granite", "meadow", "copper") for b in range(12)]
    docs = [
        {
            "id": f"doc{i}",
            "text": " ".join(rng.sample(words, 6)) + f" item{i}",
            "metadata": {"tier": "rare" if i % 100 == 0 else "common"},
        }
        for i in range(1000)
    ]
    for start in range(0, 1000, 500):
        wait_finished(api, ingest(api, name, docs[start : start + 500])["batch_id"], timeout=120)
    with db.scope() as session:
        collection = session.query(Collection).filter_by(name=name).one()
        conn = driver_connection(session)
        # Make the planner take the HNSW index, as it would on a large collection.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(sql.SQL("SET LOCAL {} = off").format(sql.Identifier(setting)))
        vector = HashEmbedder().embed(["harbour1 granite2 meadow3"])[0]
        found = search(session, collection, vector, "harbour", 10, "vector", {"tier": "rare"})
    assert len(found) == 10, "1% of chunks match, and all ten of them come back"
    assert {c.metadata["tier"] for c in found} == {"rare"}
    assert np.all(np.diff([c.rank_score for c in found]) <= 1e-9)


def test_context_is_packed_cited_and_merged(api: Any, make_collection: Any) -> None:
    name = make_collection("hash", chunk_tokens=24, chunk_overlap=0)
    long_text = "\n\n".join(
        f"Lighthouse fact {i}: keepers trimmed wicks and logged ships at dusk." for i in range(6)
    )
    docs = [
        {"id": "lights", "title": "Lighthouses", "source": "coast.md", "text": long_text},
        {
            "id": "copy",
            "title": "Copy",
            "text": "Lighthouse fact 0: keepers trimmed wicks and logged ships at dusk.",
        },
        {"id": "bread", "title": "Bread", "text": "Yeast ferments dough into a risen loaf."},
    ]
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    response = api.post(
        f"/v1/collections/{name}/context",
        json={"query": "lighthouse keepers trimmed wicks logged ships", "max_tokens": 400},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grounded"] and body["context"].startswith("[1] ")
    assert 0 < body["tokens"] <= 400
    ns = [c["n"] for c in body["citations"]]
    assert ns == list(range(1, len(ns) + 1))
    for citation in body["citations"]:
        assert f"[{citation['n']}] " in body["context"]
    lights = [c for c in body["citations"] if c["document_id"] == "lights"]
    assert len(lights) == 1 and len(lights[0]["chunk"]["ordinals"]) > 1, "adjacent chunks merged"
    assert "bread" not in {c["document_id"] for c in body["citations"]}
    # The duplicate passage of "copy" is dropped: its text appears once in the context.
    assert body["context"].count("Lighthouse fact 0:") == 1

    small = api.post(
        f"/v1/collections/{name}/context",
        json={"query": "lighthouse keepers trimmed wicks logged ships", "max_tokens": 40},
    ).json()
    assert small["tokens"] <= 40

    nothing = api.post(
        f"/v1/collections/{name}/context", json={"query": "quantum chromodynamics"}
    ).json()
    assert nothing == {
        "grounded": False,
        "threshold": nothing["threshold"],
        "best_score": nothing["best_score"],
        "reranked": None,
        "embedder": "hash",
        "context": "",
        "tokens": 0,
        "citations": [],
    }
