"""Queries read from a streaming replica that applies every commit 200 ms late, and still read
their writes: a document its batch reports `done` is found by the very next query, a deleted
one is gone, in every round. A real primary, replica (pg_basebackup, hot standby), worker
process and API; rounds: GROUNDWIRE_REPLICA_ROUNDS (100; the full check is 1,000)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from groundwire import migrate
from groundwire.embedded import start_postgres
from services.app import create_app
from services.metrics import READS
from tests.support.api import ingest, top_document, wait_finished
from tests.support.environment import harness, settings_from
from tests.support.processes import free_port, start_worker, stop_worker
from tests.support.replica import Replica, remove, start_replica

pytestmark = pytest.mark.slow

DELAY_MS = 200


@pytest.fixture(scope="module")
def stack(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Replica]]:
    """A primary of its own, its delayed replica, and a worker writing to the primary."""
    root = tmp_path_factory.mktemp("replica")
    primary = start_postgres(root / "primary", database="groundwire_replica")
    migrate.upgrade(primary.url)
    replica = start_replica(primary, root, DELAY_MS, free_port())
    tag = uuid.uuid4().hex[:6]
    env = {
        **service_env,
        "DATABASE_URL": primary.url,
        "DATABASE_READ_URL": replica.url(primary.url),
        "GROUNDWIRE_INGEST_QUEUE": f"ingest-replica-{tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"embed-replica-{tag}",
        "GROUNDWIRE_WEBHOOK_QUEUE": f"webhooks-replica-{tag}",
    }
    worker = start_worker(env, root / "worker.log")
    try:
        yield env, replica
    finally:
        stop_worker(worker)
        remove(replica)
        primary.stop()


def reads() -> tuple[float, float]:
    return (READS.labels("replica")._value.get(), READS.labels("primary")._value.get())


def test_every_write_is_read_back_through_the_replica(
    stack: tuple[dict[str, str], Replica], admin_headers: dict[str, str]
) -> None:
    env, replica = stack
    rounds = harness().replica_rounds
    with TestClient(create_app(settings_from(env)), headers=admin_headers) as api:
        name = f"replica-{uuid.uuid4().hex[:6]}"
        assert (
            api.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code == 201
        )
        before = reads()
        missed = []
        for i in range(rounds):
            text = f"Round {i} of the replica check: its code word is kw{i}x."
            wait_finished(api, ingest(api, name, [{"id": f"r{i}", "text": text}])["batch_id"])
            if top_document(api, name, f"kw{i}x") != f"r{i}":
                missed.append(f"r{i} not found")
            if i % 10 == 9:  # and a deletion is gone at once
                assert api.delete(f"/v1/collections/{name}/documents/r{i}").status_code == 204
                if top_document(api, name, f"kw{i}x") == f"r{i}":
                    missed.append(f"r{i} still found after its deletion")
        replica_reads, primary_reads = (a - b for a, b in zip(reads(), before, strict=True))
    print(
        f"\n{rounds} rounds against a replica {DELAY_MS} ms behind: {replica_reads:.0f} reads"
        f" from the replica, {primary_reads:.0f} from the primary; {len(missed)} missed"
    )
    assert missed == []
    assert replica_reads >= 0.9 * (rounds + rounds // 10), "the replica served the reads"
    assert replica.replay_lsn(env["DATABASE_URL"]) != "0/0"


def test_a_replica_too_far_behind_is_not_waited_for(
    stack: tuple[dict[str, str], Replica], admin_headers: dict[str, str]
) -> None:
    """With no time to wait, a read right after a write (a deletion, 200 ms before the
    replica applies it) goes to the primary, and does not find what was deleted."""
    env, _ = stack
    settings = settings_from({**env, "GROUNDWIRE_READ_REPLICA_WAIT_MS": "0"})
    with TestClient(create_app(settings), headers=admin_headers) as api:
        name = f"replica-{uuid.uuid4().hex[:6]}"
        made = api.post("/v1/collections", json={"name": name, "embedder": "hash"})
        assert made.status_code == 201
        docs = [
            {"id": f"p{i}", "text": f"Impatient round {i}: code word pw{i}x."} for i in range(5)
        ]
        wait_finished(api, ingest(api, name, docs)["batch_id"])
        before = reads()
        for i in range(5):
            assert api.delete(f"/v1/collections/{name}/documents/p{i}").status_code == 204
            assert top_document(api, name, f"pw{i}x") != f"p{i}"
        primary_reads = reads()[1] - before[1]
    assert primary_reads >= 4, "reads right after their writes went to the primary"
