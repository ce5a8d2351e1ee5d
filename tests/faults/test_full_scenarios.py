"""Fault scenarios of the full run (`scripts/dev faults`), too slow or too disruptive for every
CI run: Redis and PostgreSQL restarted mid-ingest, a task outliving the broker's visibility
timeout, request limits tighter than the batches, a provider 400 for one input of a shared
batch, and SIGTERM to a busy worker."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from groundwire import migrate
from groundwire.embedded import start_postgres, start_redis
from tests.support.cluster import Cluster, fault_env, report, running_cluster
from tests.support.environment import harness
from tests.support.scenarios import finish, paragraphs, post
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(
    harness().faults != "all", reason="full fault run: scripts/dev faults"
)
LIMITS = {"max_inputs": 4, "max_tokens_per_request": 400, "max_tokens_per_input": 120}


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:

    folder = tmp_path_factory.mktemp("r")
    server = start_redis(folder, persistent=False)
    holder = [server]
    yield holder, folder
    holder[0].stop()


@pytest.fixture(scope="module")
def tight_cluster(
    service_env: dict[str, str],
    own_redis: tuple[list[Any], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """A cluster on a Redis of its own, with request limits tighter than its batches."""
    holder, _ = own_redis
    env = fault_env(
        service_env,
        REDIS_URL=holder[0].url,
        GROUNDWIRE_OPENAI_MAX_INPUTS_PER_REQUEST=str(LIMITS["max_inputs"]),
        GROUNDWIRE_OPENAI_MAX_TOKENS_PER_REQUEST=str(LIMITS["max_tokens_per_request"]),
        GROUNDWIRE_OPENAI_MAX_TOKENS_PER_INPUT=str(LIMITS["max_tokens_per_input"]),
    )
    with running_cluster(env, tmp_path_factory.mktemp("tight")) as running:
        yield running


def test_redis_restarted_mid_ingest(
    tight_cluster: Cluster, own_redis: tuple[list[Any], Path], fake_openai: Any
) -> None:

    holder, folder = own_redis
    name, collection_id = tight_cluster.collection("hash")
    docs = [{"id": f"rr-{i}", "text": paragraphs(f"rr{i}", 3)} for i in range(300)]
    post(tight_cluster, name, docs[:150])
    holder[0].stop()  # every message waiting in Redis is gone with it
    with tight_cluster.client() as client:
        assert client.get("/readyz").status_code == 503
        assert client.get("/v1/queues").status_code == 503
        during = client.post(
            f"/v1/collections/{name}/documents", json={"documents": [{"id": "down", "text": "x"}]}
        )
        assert during.status_code == 202, "accepted work waits in the database for the broker"
    time.sleep(2)
    holder[0] = start_redis(folder, persistent=False)
    assert holder[0].url == tight_cluster.env["REDIS_URL"]
    post(tight_cluster, name, docs[150:])
    finish(tight_cluster, "restart Redis mid-ingest", collection_id)


def test_request_limits_tighter_than_batches(tight_cluster: Cluster, fake_openai: Any) -> None:
    fake_openai.reset(dimensions=16, **LIMITS)
    name, collection_id = tight_cluster.collection(
        "openai:fake-fault-limits", chunk_tokens=LIMITS["max_tokens_per_input"]
    )
    docs = [{"id": f"ol-{i}", "text": paragraphs(f"ol{i}", 12)} for i in range(60)]
    post(tight_cluster, name, docs)
    row = finish(
        tight_cluster, "oversized inputs against the provider's limits", collection_id, fake_openai
    )
    rejected = sum(r.status == 400 for r in fake_openai.requests)
    assert rejected == 0 and row["failed"] == 0, row
    assert all(r.inputs <= LIMITS["max_inputs"] for r in fake_openai.requests)


def test_provider_rejects_one_input_of_a_shared_batch(
    tight_cluster: Cluster, fake_openai: Any
) -> None:
    fake_openai.reset(dimensions=16)
    name, collection_id = tight_cluster.collection("openai:fake-fault-reject")
    fake_openai.reset(dimensions=16, reject_marker="POISON")
    docs = [{"id": f"p-{i}", "text": f"Harbour note {i} on moorings."} for i in range(16)]
    docs[5]["text"] = "This note is POISON to the provider."
    post(tight_cluster, name, docs)
    row = finish(
        tight_cluster, "provider 400 for one input in a shared batch", collection_id, fake_openai
    )
    assert row["failed"] == 1, "only the rejected document fails"


def test_task_outliving_the_visibility_timeout(cluster: Cluster, fake_openai: Any) -> None:
    """Embedding takes longer than Redis waits before redelivering: however many runs, one
    write. (The lease keeper holds the lease, so the sweeper does not send it again.)"""
    fake_openai.reset(dimensions=16)
    name, collection_id = cluster.collection("openai:fake-fault-slow")
    fake_openai.reset(dimensions=16, latency_s=14.0)  # visibility timeout: 10 s
    docs = [{"id": f"s-{i}", "text": paragraphs(f"s{i}", 2)} for i in range(8)]
    post(cluster, name, docs)
    time.sleep(11)
    cluster.add_worker()  # a consumer starting restores messages unacknowledged for too long
    row = finish(cluster, "a task outlives the visibility timeout", collection_id, fake_openai)
    report(
        {
            "scenario": "visibility timeout: embedding requests",
            "requests": len(fake_openai.requests),
        }
    )
    assert row["failed"] == 0


def test_sigterm_lets_a_busy_worker_finish(cluster: Cluster, fake_openai: Any) -> None:
    fake_openai.reset(dimensions=16)
    name, collection_id = cluster.collection("openai:fake-fault-term")
    fake_openai.reset(dimensions=16, latency_s=3.0)
    post(cluster, name, [{"id": f"t-{i}", "text": paragraphs(f"t{i}", 2)} for i in range(8)])
    wait_for(lambda: fake_openai.requests, timeout=30)  # an embedding request is in flight
    worker = cluster.workers.pop(0)
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(60)
    assert worker.process.returncode == 0, worker.output()[-2000:]
    cluster.add_worker()
    finish(cluster, "SIGTERM to a busy worker", collection_id, fake_openai)


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:

    folder = tmp_path_factory.mktemp("pg")
    server = start_postgres(folder, database="faults")
    migrate.upgrade(server.url)
    holder: list[Any] = [server, folder]
    yield holder
    holder[0].stop()


def test_postgres_restarted_mid_ingest(
    service_env: dict[str, str],
    own_postgres: list[Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:

    server: Any = own_postgres[0]
    folder: Path = own_postgres[1]
    env = fault_env(service_env, DATABASE_URL=server.url)
    with running_cluster(env, tmp_path_factory.mktemp("pgcluster")) as cluster:
        name, collection_id = cluster.collection("hash")
        docs = [{"id": f"pg-{i}", "text": paragraphs(f"pg{i}", 3)} for i in range(300)]
        post(cluster, name, docs[:200])
        server.stop()
        with cluster.client() as client:
            assert client.get(f"/v1/collections/{name}").status_code == 503
            assert client.get("/readyz").status_code == 503
        time.sleep(3)
        own_postgres[0] = start_postgres(folder, database="faults")
        assert own_postgres[0].url == server.url, "the restarted server answers at the same URL"
        wait_for(lambda: _ready(cluster), timeout=60)  # the API recovers by itself
        post(cluster, name, docs[200:])
        finish(cluster, "restart PostgreSQL mid-ingest", collection_id)


def _ready(cluster: Cluster) -> bool:
    with cluster.client() as client:
        return client.get("/readyz").status_code == 200
