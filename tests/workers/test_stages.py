"""The two stages: documents are chunked in batches on the ingest queue and embedded across
documents on the embed queue, by separate worker pools when wanted; one input the provider
rejects fails its own document, not the others in its request."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select, text

from services.broker import Broker
from services.db import Database
from services.embedding.openai_provider import PROBE_TEXT
from services.models import Collection, Document
from tests.support.api import document, ingest, wait_finished
from tests.support.environment import settings_from
from tests.support.processes import stop_worker
from tests.support.waiting import wait_for


def small_docs(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{i}", "text": f"Note {i} from {prefix}: tide tables for harbour {i}."}
        for i in range(count)
    ]


def collection_id(db: Database, name: str) -> int:
    with db.scope() as session:
        found = session.scalar(select(Collection.id).where(Collection.name == name))
        assert found is not None
        return int(found)


def test_small_documents_share_embedding_requests(
    api: Any, fake_openai: Any, make_collection: Any, worker: Any, db: Database
) -> None:
    fake_openai.reset(dimensions=48)
    name = make_collection("openai:fake-batching-model")
    fake_openai.reset(dimensions=48)
    batch = ingest(api, name, small_docs("share", 40))
    wait_finished(api, batch["batch_id"])
    seen = [r for r in fake_openai.requests if r.status == 200 and r.first_text != PROBE_TEXT]
    # 40 documents in one ingest task: one embedding request, not forty.
    assert sum(r.inputs for r in seen) == 40
    assert len(seen) == 1, [r.inputs for r in seen]
    with db.scope() as session:
        ledger = session.execute(
            text(
                "SELECT count(*), sum(inputs), count(DISTINCT batch_id) FROM embedding_requests"
                " WHERE collection_id = :c AND outcome = 'ok'"
            ),
            {"c": collection_id(db, name)},
        ).one()
        usage = session.execute(
            text(
                "SELECT count(*), sum(inputs), count(DISTINCT batch_id) FROM embedding_usage"
                " WHERE collection_id = :c"
            ),
            {"c": collection_id(db, name)},
        ).one()
    assert tuple(ledger) == (1, 40, 1)
    assert tuple(usage) == (40, 40, 1), "one usage row per document, one shared batch"


def test_one_rejected_input_fails_only_its_document(
    api: Any, fake_openai: Any, make_collection: Any, worker: Any
) -> None:
    fake_openai.reset(dimensions=40)
    name = make_collection("openai:fake-isolation-model")
    fake_openai.reset(dimensions=40, reject_marker="FORBIDDEN")
    docs = small_docs("iso", 6)
    docs[3]["text"] = "This note carries a FORBIDDEN word the provider refuses."
    batch = ingest(api, name, docs)
    wait_finished(api, batch["batch_id"], allow_failed=True)
    states = {d["id"]: document(api, name, d["id"]) for d in docs}
    bad = states.pop("iso-3")
    assert bad["status"] == "failed" and bad["error_class"] == "embedding", bad
    assert "provider rejected the request" in bad["error"], bad
    assert {s["status"] for s in states.values()} == {"done"}
    assert all(s["chunks"] == 1 for s in states.values())
    rejected = [r for r in fake_openai.requests if r.status == 400]
    assert len(rejected) == 2, "the shared request, then the bad document on its own"


def test_stages_run_on_separate_worker_pools(
    service_env: dict[str, str],
    make_collection: Any,
    tmp_path: Path,
    db: Database,
    spawn_worker: Any,
) -> None:
    tag = uuid.uuid4().hex[:6]
    env = {
        **service_env,
        "GROUNDWIRE_INGEST_QUEUE": f"only-ingest-{tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"only-embed-{tag}",
    }
    name = make_collection("hash")
    with db.scope() as session:
        docs = [
            Document(
                collection_id=collection_id(db, name),
                external_id=f"stage-{i}",
                content=f"Harbour {i} keeps a tide table and a lamp.",
                content_hash=f"h{i}",
                metadata_={},
            )
            for i in range(5)
        ]
        session.add_all(docs)
        session.flush()
        items = [[d.id, d.version] for d in docs]
    ids = [i for i, _ in items]

    def statuses() -> set[str]:
        with db.scope() as session:
            rows = session.scalars(select(Document.status).where(Document.id.in_(ids)))
            return set(rows)

    broker = redis.Redis.from_url(service_env["REDIS_URL"])
    chunker = spawn_worker(env, tmp_path / "ingest.log", 1, env["GROUNDWIRE_INGEST_QUEUE"])
    try:
        assert Broker(settings_from(env)).enqueue([(i, v) for i, v in items]) == len(items)
        wait_for(lambda: broker.llen(env["GROUNDWIRE_EMBED_QUEUE"]) == 1, timeout=30)
        assert statuses() == {"processing"}, "chunked, waiting for the embed stage"
    finally:
        stop_worker(chunker)
    embedder = spawn_worker(env, tmp_path / "embed.log", 1, env["GROUNDWIRE_EMBED_QUEUE"])
    try:
        wait_for(lambda: statuses() == {"done"}, timeout=30)
    finally:
        stop_worker(embedder)
    assert broker.llen(env["GROUNDWIRE_EMBED_QUEUE"]) == 0
