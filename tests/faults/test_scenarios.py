"""Fault scenarios against real processes. Each ends with every accepted document `done` or
`failed` with a reason, and no duplicate, mixed-version or orphan chunks.

The CI subset runs with the suite; sizes grow with GROUNDWIRE_FAULTS_SCALE (e.g. 5 gives the
1,000-document ingest of the full run: `scripts/dev faults`).
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg

from tests.support.cluster import Cluster, admin_headers, start_api, wait_settled
from tests.support.environment import harness
from tests.support.invariants import counts, settled
from tests.support.processes import stop
from tests.support.scenarios import finish, paragraphs, post

SCALE = harness().faults_scale


def test_kill_9_workers_during_ingest(cluster: Cluster, fake_openai: Any) -> None:
    """Whole workers (main process and pool) are SIGKILLed mid-task and replaced."""
    fake_openai.reset(dimensions=16)
    name, collection_id = cluster.collection("openai:fake-fault-kill", chunk_tokens=40)
    fake_openai.reset(dimensions=16, latency_s=1.0)  # tasks are in flight when the kill comes
    docs = [{"id": f"k-{i}", "text": paragraphs(f"k{i}", 4)} for i in range(200 * SCALE)]
    post(cluster, name, docs)
    database = cluster.env["DATABASE_URL"]
    kills, in_flight = 0, 0
    while kills < 5 * SCALE and not settled(database, collection_id):
        time.sleep(3)
        in_flight += counts(database, collection_id).lost
        cluster.kill_worker(0)
        kills += 1
        cluster.add_worker()
    assert in_flight > 0, "the kills hit unfinished work"
    finish(cluster, "kill -9 a worker every few seconds", collection_id, fake_openai, kills=kills)


def test_crash_between_commit_and_enqueue(
    cluster: Cluster, fake_openai: Any, tmp_path: Any
) -> None:
    """An API whose broker is unreachable commits and answers 202; the sweeper sends the work."""
    name, collection_id = cluster.collection("hash")
    env = {**cluster.env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    api, url = start_api(env, tmp_path / "api-no-broker.log")
    try:
        docs = [{"id": f"e-{i}", "text": paragraphs(f"e{i}", 2)} for i in range(40 * SCALE)]
        with httpx.Client(base_url=url, timeout=60, headers=admin_headers(env)) as client:
            response = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
        assert response.status_code == 202, response.text
    finally:
        stop(api)
    finish(cluster, "crash between commit and enqueue", collection_id)


def test_fifty_concurrent_updates_of_one_document(cluster: Cluster) -> None:
    name, collection_id = cluster.collection("hash", chunk_tokens=30)
    texts = [paragraphs(f"update-{n}-{uuid.uuid4().hex[:6]}", 3) for n in range(50)]

    def update(text: str) -> dict[str, Any]:
        with cluster.client() as client:
            response = client.post(
                f"/v1/collections/{name}/documents",
                json={"documents": [{"id": "contested", "text": text}]},
            )
        assert response.status_code == 202, response.text
        return dict(response.json()["documents"][0])

    with ThreadPoolExecutor(max_workers=16) as pool:
        accepted = list(pool.map(update, texts))
    finish(cluster, "50 concurrent updates of one document", collection_id)
    latest = max(accepted, key=lambda a: a["version"])
    expected = texts[accepted.index(latest)]
    with psycopg.connect(cluster.env["DATABASE_URL"]) as conn:
        version, indexed = conn.execute(
            "SELECT version, indexed_version FROM documents WHERE collection_id = %s",
            [collection_id],
        ).fetchone() or (None, None)
        stored = [
            t
            for (t,) in conn.execute(
                "SELECT text FROM chunks WHERE collection_id = %s ORDER BY ordinal",
                [collection_id],
            )
        ]
    assert version == indexed == latest["version"]
    assert " ".join(stored).split() == expected.split(), "the last accepted text is what is stored"


def test_readers_never_see_half_a_document(cluster: Cluster) -> None:
    name, collection_id = cluster.collection("hash", chunk_tokens=30)
    docs = [{"id": f"r-{i}", "text": paragraphs(f"r{i}-v0", 3)} for i in range(20)]
    post(cluster, name, docs)
    wait_settled(cluster.env["DATABASE_URL"], collection_id)
    stop_reading = threading.Event()
    seen = {"reads": 0, "violations": 0, "queries": 0, "errors": 0}

    def read() -> None:
        snapshot = (
            "SELECT d.id, count(c.id), count(DISTINCT c.doc_version),"
            " bool_and(c.doc_version = d.indexed_version)"
            " FROM documents d LEFT JOIN chunks c ON c.document_id = d.id"
            " WHERE d.collection_id = %s AND d.indexed_version IS NOT NULL GROUP BY d.id"
        )
        with (
            psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True) as conn,
            cluster.client() as client,
        ):
            while not stop_reading.is_set():
                for _, chunks, versions, current in conn.execute(snapshot, [collection_id]):
                    if chunks == 0 or versions != 1 or not current:
                        seen["violations"] += 1
                seen["reads"] += 1
                response = client.post(
                    f"/v1/collections/{name}/query", json={"query": "keeper logged the tide"}
                )
                seen["queries"] += 1
                seen["errors"] += response.status_code != 200

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(1, 6 * SCALE + 1):
            post(
                cluster,
                name,
                [{**d, "text": paragraphs(f"{d['id']}-v{round_}", 3 + round_ % 3)} for d in docs],
            )
            time.sleep(0.5)
        wait_settled(cluster.env["DATABASE_URL"], collection_id)
    finally:
        stop_reading.set()
        reader.join()
    finish(cluster, "readers while documents are replaced", collection_id, **seen)
    assert seen["reads"] > 10 and seen["violations"] == 0 and seen["errors"] == 0, seen


def test_thirty_percent_of_provider_calls_rate_limited(cluster: Cluster, fake_openai: Any) -> None:
    fake_openai.reset(dimensions=16)
    name, collection_id = cluster.collection("openai:fake-fault-429", chunk_tokens=40)
    fake_openai.reset(dimensions=16, rate_limit_ratio=0.3, retry_after_s=0.05)
    docs = [{"id": f"q-{i}", "text": paragraphs(f"q{i}", 3)} for i in range(100 * SCALE)]
    post(cluster, name, docs)
    row = finish(cluster, "30% of provider calls answer 429", collection_id, fake_openai)
    assert row["failed"] == 0 and row["rate_limited"] > 0, row
