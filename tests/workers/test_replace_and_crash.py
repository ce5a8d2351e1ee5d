"""Updates replace a document's chunks atomically; a killed worker loses nothing."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from sqlalchemy import text

from services.db import Database
from services.embedding.cl100k import TiktokenSpans
from tests.support.api import document, ingest, query, wait_status
from tests.support.waiting import wait_for
from workers.chunking import chunk_text

pytestmark = pytest.mark.usefixtures("worker")

V1 = "\n\n".join(f"Alpha paragraph {i} speaks of apples and orchards." * 3 for i in range(6))
V2 = "\n\n".join(f"Beta paragraph {i} speaks of bicycles and gears." * 3 for i in range(5))
# Text no other test embeds, so the embedding cache cannot answer for the provider.
V3 = "\n\n".join(f"Gamma section {i} describes comets and their tails." * 3 for i in range(6))


def chunk_versions(db: Database, collection: str, doc_id: str) -> list[tuple[int, int]]:
    """(doc_version, ordinal) of every stored chunk of the document."""
    with db.scope() as session:
        rows = session.execute(
            text(
                "SELECT c.doc_version, c.ordinal FROM chunks c"
                " JOIN documents d ON d.id = c.document_id"
                " JOIN collections k ON k.id = d.collection_id"
                " WHERE k.name = :name AND d.external_id = :doc ORDER BY c.ordinal"
            ),
            {"name": collection, "doc": doc_id},
        )
        return [(int(v), int(o)) for v, o in rows]


def test_update_replaces_chunks_atomically(
    api: Any, fake_openai: Any, make_collection: Any, db: Database
) -> None:
    fake_openai.reset(dimensions=64)
    name = make_collection("openai:fake-embedding-model", chunk_tokens=40, chunk_overlap=0)
    ingest(api, name, [{"id": "doc", "text": V1}])
    v1 = wait_status(api, name, "doc", "done")
    v1_texts = {r["text"] for r in query(api, name, "apples", min_score=-1, k=100)["results"]}
    assert len(v1_texts) == v1["chunks"] > 1

    fake_openai.reset(dimensions=64, latency_s=1.5)
    accepted = ingest(api, name, [{"id": "doc", "text": V2}])
    assert accepted["documents"] == [{"id": "doc", "status": "queued", "version": 2}]
    pending = document(api, name, "doc")
    assert pending["version"] == 2 and pending["indexed_version"] == 1

    seen_versions = []
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, "the new version was not written within 90 s"
        texts = {r["text"] for r in query(api, name, "apples", min_score=-1, k=100)["results"]}
        versions = {v for v, _ in chunk_versions(db, name, "doc")}
        assert texts, "readers never see a document with no chunks"
        assert len(versions) == 1, "readers never see two versions at once"
        assert texts == v1_texts or all(t.startswith("Beta") for t in texts)
        seen_versions.append(versions.pop())
        if document(api, name, "doc")["status"] == "done":
            break
        time.sleep(0.02)
    assert seen_versions[0] == 1, (
        "the old version stayed searchable while the new one was processed"
    )
    final = document(api, name, "doc")
    assert final["version"] == final["indexed_version"] == 2
    stored = chunk_versions(db, name, "doc")
    assert {v for v, _ in stored} == {2}
    assert [o for _, o in stored] == list(range(final["chunks"]))


def test_killed_worker_still_ends_done_exactly_once(
    api: Any, fake_openai: Any, make_collection: Any, worker: Any, db: Database
) -> None:
    fake_openai.reset(dimensions=64)
    name = make_collection("openai:fake-embedding-model", chunk_tokens=50, chunk_overlap=0)
    fake_openai.reset(dimensions=64, latency_s=4.0)
    ingest(api, name, [{"id": "victim", "text": V3}])
    wait_status(api, name, "victim", "processing", timeout=30)
    wait_for(lambda: fake_openai.requests, timeout=10)  # the embedding request is in flight

    children = worker.pool_children()
    assert children
    for child in children:
        child.send_signal(signal.SIGKILL)
    fake_openai.reset(dimensions=64)

    done = wait_status(api, name, "victim", "done", timeout=90)
    assert fake_openai.requests, "the embedding task ran again after its process was killed"
    expected = chunk_text(V3, TiktokenSpans(), 50, 0)
    stored = chunk_versions(db, name, "victim")
    assert len(stored) == len(expected) == done["chunks"]
    assert stored == [(1, i) for i in range(len(expected))]
    assert worker.process.poll() is None, "the worker itself survived and replaced its children"
