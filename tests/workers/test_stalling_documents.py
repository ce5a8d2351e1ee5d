"""One document cannot stall ingestion: parsing has a time limit per document, a task has
soft and hard time limits, and a version whose attempts keep dying ends `gave_up`."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from tests.support.api import document, ingest, wait_finished, wait_status
from tests.support.environment import settings_from
from tests.support.processes import Worker
from tests.support.waiting import wait_for
from workers.parsing import NESTING_CHECK_TAGS

# Quadratic in lexbor and under the nesting check: about a second to parse.
SLOW = "<div>" * (NESTING_CHECK_TAGS - 10) + "slow words"
# The document that stalled ingestion (over a minute per attempt before the nesting cap).
STALLING = "<dl><dd>word " * 64_000
# Plain text near the document size limit: several seconds of chunking per attempt.
LONG = " ".join(f"word{i} harbour lamp tide" for i in range(270_000))


@dataclass
class Isolated:
    """An API and a worker of their own on queues no other test uses."""

    api: TestClient
    worker: Worker


@pytest.fixture
def isolated(
    request: pytest.FixtureRequest,
    service_env: dict[str, str],
    admin_headers: dict[str, str],
    spawn_worker: Any,
    tmp_path: Path,
) -> Iterator[Isolated]:
    tag = uuid.uuid4().hex[:6]
    env = {
        **service_env,
        "GROUNDWIRE_INGEST_QUEUE": f"stall-ingest-{tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"stall-embed-{tag}",
        **request.param,
    }
    worker = spawn_worker(env, tmp_path / "worker.log", 1)
    with TestClient(create_app(settings_from(env)), headers=admin_headers) as api:
        yield Isolated(api, worker)


def new_collection(api: TestClient) -> str:
    name = f"stall-{uuid.uuid4().hex[:8]}"
    response = api.post("/v1/collections", json={"name": name, "embedder": "hash"})
    assert response.status_code == 201, response.text
    return name


def html(doc_id: str, content: str) -> dict[str, Any]:
    return {"id": doc_id, "text": content, "content_type": "text/html"}


def test_the_document_that_stalled_ingestion_now_ends_done(
    api: Any, worker: Worker, make_collection: Any
) -> None:
    name = make_collection("hash")
    batch = ingest(api, name, [html("stalling", STALLING)])
    wait_finished(api, batch["batch_id"], timeout=60)
    assert document(api, name, "stalling")["chunks"] > 0


@pytest.mark.parametrize("isolated", [{"GROUNDWIRE_PARSE_TIMEOUT_S": "0.3"}], indirect=True)
def test_a_slow_document_fails_at_its_parse_limit_and_the_rest_flow(isolated: Isolated) -> None:
    api = isolated.api
    name = new_collection(api)
    ordinary = [html(f"ok-{i}", f"<p>Harbour {i} keeps a lamp.</p>") for i in range(20)]
    batch = ingest(api, name, [html("slow", SLOW), *ordinary])
    finished = wait_finished(api, batch["batch_id"], timeout=60, allow_failed=True)
    assert finished["failed"] == 1, finished

    slow = document(api, name, "slow")
    assert slow["status"] == "failed" and slow["error_class"] == "parse"
    assert "parsing took longer than 0.3 s" in slow["error"]
    assert all(document(api, name, d["id"])["status"] == "done" for d in ordinary)
    dead = api.get(f"/v1/collections/{name}/documents", params={"status": "failed"}).json()
    assert [d["id"] for d in dead["documents"]] == ["slow"]


@pytest.mark.parametrize(
    "isolated",
    [{"GROUNDWIRE_TASK_SOFT_TIME_LIMIT_S": "0.3", "GROUNDWIRE_TASK_TIME_LIMIT_S": "20"}],
    indirect=True,
)
def test_a_task_past_its_soft_time_limit_gives_up_its_documents(isolated: Isolated) -> None:
    api = isolated.api
    name = new_collection(api)
    batch = ingest(api, name, [html("slow", SLOW)])
    wait_finished(api, batch["batch_id"], timeout=60, allow_failed=True)
    slow = document(api, name, "slow")
    assert slow["status"] == "failed" and slow["error_class"] == "gave_up", slow
    assert "past its 0.3 s time limit" in slow["error"]
    # Plain text: no parse process to start again (which alone may outlast 0.3 s).
    after = ingest(api, name, [{"id": "next", "text": "the worker goes on"}])
    wait_finished(api, after["batch_id"], timeout=60)


@pytest.mark.parametrize("isolated", [{"GROUNDWIRE_DOCUMENT_MAX_ATTEMPTS": "2"}], indirect=True)
def test_a_document_that_keeps_killing_its_worker_ends_gave_up(isolated: Isolated) -> None:
    api = isolated.api
    name = new_collection(api)
    ingest(api, name, [{"id": "killer", "text": LONG}])
    for attempt in (1, 2):

        def chunking(attempt: int = attempt) -> bool:
            doc = document(api, name, "killer")
            return doc["status"] == "processing" and doc["attempts"] == attempt

        wait_for(chunking, timeout=60, interval=0.1)
        children = isolated.worker.pool_children()
        assert children, "no pool process to kill"
        for child in children:  # as the kernel's out-of-memory killer would
            child.send_signal(signal.SIGKILL)
    gave_up = wait_status(api, name, "killer", "failed", timeout=60)
    assert gave_up["error_class"] == "gave_up" and gave_up["attempts"] == 2, gave_up
    assert "gave up after 2 attempts" in gave_up["error"]
    assert isolated.worker.process.poll() is None
    after = ingest(api, name, [{"id": "next", "text": "the worker goes on"}])
    wait_finished(api, after["batch_id"], timeout=60)
