"""Webhooks end to end: a real API, worker and beat; receivers over real HTTP. Every event
arrives signed as Standard Webhooks (checked with the `standardwebhooks` package), after
the change it reports has committed (the receiver looks in the database before it
answers), and once per `webhook-id`; a receiver that fails or is down gets them later."""

from __future__ import annotations

import itertools
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks import Webhook

from services.db import Database
from tests.support.cluster import start_api
from tests.support.processes import free_port, spawn, start_worker, stop, stop_worker
from tests.support.receiver import Received, Receiver
from tests.support.waiting import wait_for
from tests.support.webhooks import drop_outside_webhooks

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def stack(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, db: Database
) -> Iterator[tuple[str, dict[str, str]]]:
    """The API, a worker on a webhook queue of its own, and beat sending it ticks."""
    left = drop_outside_webhooks(db)
    assert left == 0, f"{left} webhooks to addresses off this machine were left by other tests"
    logs = tmp_path_factory.mktemp("webhooks")
    env = {
        **service_env,
        "GROUNDWIRE_WEBHOOK_ALLOW_PRIVATE": "1",
        "GROUNDWIRE_WEBHOOK_QUEUE": f"webhooks-{uuid.uuid4().hex[:8]}",
        "GROUNDWIRE_WEBHOOK_POLL_S": "0.3",
        "GROUNDWIRE_WEBHOOK_RETRY_BASE_S": "0.5",
        "GROUNDWIRE_WEBHOOK_RETRY_MAX_S": "2",
        "GROUNDWIRE_WEBHOOK_TIMEOUT_S": "1",
    }
    api, url = start_api(env, logs / "api.log")
    deliverer = start_worker(env, logs / "deliverer.log", 1, env["GROUNDWIRE_WEBHOOK_QUEUE"])
    beat = spawn(
        [
            *(sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat"),
            *("--schedule", str(logs / "beat-schedule"), "--loglevel", "WARNING"),
        ],
        env,
        logs / "beat.log",
    )
    yield url, env
    stop(beat)
    stop_worker(deliverer)
    stop(api)
    assert "Traceback" not in deliverer.output(), deliverer.output()[-3000:]


@pytest.fixture
def client(stack: tuple[str, dict[str, str]], admin_headers: dict[str, str]) -> Iterator[Any]:
    with httpx.Client(base_url=stack[0], headers=admin_headers, timeout=30) as http:
        yield http


def committed(database_url: str) -> Any:
    """The receiver's check: is the change this event reports visible to another session?"""

    def check(event: dict[str, Any]) -> bool:
        data = event["data"]
        with psycopg.connect(database_url, autocommit=True) as conn:
            if event["type"] == "batch.finished":
                row = conn.execute(
                    "SELECT finished_at IS NOT NULL FROM ingest_batches WHERE id = %s",
                    (data["batch_id"],),
                ).fetchone()
                return bool(row and row[0])
            row = conn.execute(
                "SELECT d.status, d.version FROM documents d JOIN collections c"
                " ON c.id = d.collection_id WHERE c.name = %s AND d.external_id = %s",
                (data["collection"], data["id"]),
            ).fetchone()
            return row is not None and (row[0], row[1]) == (data["status"], data["version"])

    return check


def new_collection(client: Any, embedder: str = "hash") -> str:
    name = f"wh-{uuid.uuid4().hex[:8]}"
    made = client.post("/v1/collections", json={"name": name, "embedder": embedder})
    assert made.status_code == 201, made.text
    return name


def subscribe(client: Any, url: str, events: list[str], collections: list[str]) -> dict[str, Any]:
    made = client.post(
        "/v1/webhooks", json={"url": url, "events": events, "collections": collections}
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def ingest(client: Any, name: str, docs: list[dict[str, Any]]) -> str:
    accepted = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["batch_id"])


def verified(secret: str, received: list[Received]) -> list[dict[str, Any]]:
    """Each request's event, once its signature verifies (raises otherwise)."""
    webhook = Webhook(secret)
    return [dict(webhook.verify(r.body, r.headers)) for r in received]


def deliveries(client: Any, webhook_id: str) -> list[dict[str, Any]]:
    """Every delivery of the webhook, page by page, newest first."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 500}
    while True:
        listed = client.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
        assert listed.status_code == 200, listed.text
        page = listed.json()
        out.extend(page["deliveries"])
        if page["next_before"] is None:
            return out
        params["before"] = page["next_before"]


ALL = ["document.done", "document.failed", "batch.finished"]


def test_each_event_arrives_once_signed_and_after_its_commit(
    client: Any, database_url: str, fake_openai: Any
) -> None:
    receiver = Receiver(check=committed(database_url)).start()
    elsewhere = Receiver().start()
    fake_openai.reset(reject_marker="POISON")
    try:
        name = new_collection(client)
        rejected = new_collection(client, "openai:text-embedding-3-small")
        other = new_collection(client)
        hook = subscribe(client, receiver.url, ALL, [name, rejected])
        assert hook["secret"].startswith("whsec_")
        assert hook["collections"] == sorted([name, rejected])
        other_hook = subscribe(client, elsewhere.url, ["document.done"], [other])
        docs = [{"id": f"d{n}", "text": f"Ferry {n} leaves at dawn."} for n in range(5)]
        batch = ingest(client, name, docs)
        wait_for(lambda: receiver.events("batch.finished"), timeout=60, interval=0.2)
        poisoned = ingest(client, rejected, [{"id": "bad", "text": "POISON pill"}])

        wait_for(lambda: len(receiver.events()) >= 8, timeout=60, interval=0.2)
        time.sleep(1.0)  # nothing more comes
        got = receiver.events()
        events = verified(hook["secret"], got)
        assert len({r.headers["webhook-id"] for r in got}) == len(got) == 8
        assert all(r.checked for r in got), "an event arrived before its change committed"
        done = sorted(e["data"]["id"] for e in events if e["type"] == "document.done")
        assert done == [f"d{n}" for n in range(5)]
        (failed,) = [e["data"] for e in events if e["type"] == "document.failed"]
        assert failed["id"] == "bad" and failed["error_class"] == "embedding"
        finished = [e["data"] for e in events if e["type"] == "batch.finished"]
        assert finished == [
            {"batch_id": batch, "collection": name, "total": 5, "done": 5, "failed": 0,
             "unchanged": 0, "deleted": 0},
            {"batch_id": poisoned, "collection": rejected, "total": 1, "done": 0, "failed": 1,
             "unchanged": 0, "deleted": 0},
        ]  # fmt: skip
        assert elsewhere.events(answered=None) == []  # another collection's receiver

        log = deliveries(client, hook["id"])
        assert sorted(d["id"] for d in log) == sorted(r.headers["webhook-id"] for r in got)
        for delivery in log:
            assert delivery["status"] == "delivered" and delivery["attempts"] == 1
            (attempt,) = delivery["attempt_log"]
            assert attempt["status_code"] == 204 and attempt["latency_ms"] > 0

        ingest(client, other, [{"id": "x", "text": "Elsewhere entirely."}])
        wait_for(lambda: elsewhere.events(), timeout=60, interval=0.2)
        (only,) = verified(other_hook["secret"], elsewhere.events())
        assert only["type"] == "document.done" and only["data"]["collection"] == other
    finally:
        fake_openai.reset()
        receiver.stop()
        elsewhere.stop()


def test_a_failing_receiver_is_retried_and_a_delivery_can_be_sent_again(client: Any) -> None:
    receiver = Receiver().start()
    receiver.failures_left = 2
    try:
        name = new_collection(client)
        hook = subscribe(client, receiver.url, ["document.done"], [name])
        ingest(client, name, [{"id": "one", "text": "Tides turn twice a day."}])
        wait_for(lambda: receiver.events(), timeout=60, interval=0.2)
        tries = receiver.events(answered=None)
        assert [r.status for r in tries] == [503, 503, 204]
        assert len({r.headers["webhook-id"] for r in tries}) == 1  # one event, tried thrice
        verified(hook["secret"], tries)
        gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
        assert all(gap >= 0.4 for gap in gaps), gaps  # backed off (0.5 s, then 1 s, ±10%)
        (delivery,) = deliveries(client, hook["id"])
        assert delivery["attempts"] == 3 and delivery["status"] == "delivered"
        assert [a["status_code"] for a in delivery["attempt_log"]] == [503, 503, 204]
        assert delivery["status_codes"] == [503, 503, 204] and len(delivery["latencies_ms"]) == 3
        assert delivery["attempt_log"][0]["error"] == "HTTP 503"

        again = client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry")
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"
        wait_for(lambda: len(receiver.events()) == 2, timeout=30, interval=0.2)
        assert receiver.events()[1].headers["webhook-id"] == delivery["id"]
        assert deliveries(client, hook["id"])[0]["attempts"] == 4

        missing = client.post(f"/v1/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/retry")
        assert missing.status_code == 404
        assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
        ingest(client, name, [{"id": "two", "text": "After the webhook was deleted."}])
        time.sleep(3)
        assert len(receiver.events(answered=None)) == 4  # nothing for a deleted webhook
    finally:
        receiver.stop()


def test_a_stalling_or_deleted_receiver_holds_up_no_other(
    client: Any, admin_headers: dict[str, str], stack: tuple[str, dict[str, str]]
) -> None:
    name = new_collection(client)
    fast, stalling = Receiver().start(), Receiver().start()
    stalling.trickle = True  # answers a byte at a time, for a minute

    def delete_own_webhook(_: dict[str, Any]) -> None:  # while its delivery is in flight
        httpx.delete(f"{stack[0]}/v1/webhooks/{doomed['id']}", headers=admin_headers)

    vanishing = Receiver(check=delete_own_webhook).start()
    try:
        hook = subscribe(client, fast.url, ["document.done"], [name])
        slow = subscribe(client, stalling.url, ["document.done"], [name])
        doomed = subscribe(client, vanishing.url, ["document.done"], [name])
        began = time.monotonic()
        ingest(client, name, [{"id": f"n{n}", "text": f"Note {n} on the tides."} for n in range(3)])
        wait_for(lambda: len(fast.events()) == 3, timeout=30, interval=0.1)
        took = time.monotonic() - began
        assert took < 10, took  # the stalling receiver's minute held up no one
        verified(hook["secret"], fast.events())
        tried = lambda: [d for d in deliveries(client, slow["id"]) if d["attempts"]]  # noqa: E731
        wait_for(tried, timeout=30)
        stalled = tried()
        # its oldest event is tried, once per round; the others wait behind it, untried
        assert len(stalled) == 1 and stalled[0]["data"]["id"] == "n0"
        assert stalled[0]["status"] == "pending"
        assert stalled[0]["last_error"] == "no answer within 1 s"
        assert stalled[0]["attempt_log"][0]["latency_ms"] < 3000
        assert client.get(f"/v1/webhooks/{doomed['id']}").status_code == 404
        # the tick went on after the delete: the next event arrives as quickly
        ingest(client, name, [{"id": "after", "text": "One more note."}])
        wait_for(lambda: len(fast.events()) == 4, timeout=30, interval=0.1)
    finally:
        for receiver in (fast, stalling, vanishing):
            receiver.stop()


@pytest.mark.slow
def test_a_receiver_down_for_the_first_30_s_of_a_load_gets_every_event(
    client: Any, database_url: str
) -> None:
    port = free_port()
    receiver = Receiver(port, check=committed(database_url))
    name = new_collection(client)
    hook = subscribe(client, receiver.url, ["document.done", "batch.finished"], [name])
    started = time.monotonic()
    batches = []
    for b in range(4):
        docs = [{"id": f"doc-{b}-{n}", "text": f"Record {b}-{n} of the log."} for n in range(500)]
        batches.append(ingest(client, name, docs))
    try:
        time.sleep(max(0.0, 30 - (time.monotonic() - started)))
        receiver.start()  # up again, 30 s after the load began
        expected = 2000 + len(batches)
        wait_for(
            lambda: len({r.headers["webhook-id"] for r in receiver.events()}) >= expected,
            timeout=300,
            interval=1,
        )
        caught_up = time.monotonic() - started
        got = receiver.events()
        print(f"receiver up at 30 s; all {expected} events received {caught_up:.1f} s in")
        events = verified(hook["secret"], got)
        done = {e["data"]["id"] for e in events if e["type"] == "document.done"}
        assert len(done) == 2000
        finished = {e["data"]["batch_id"] for e in events if e["type"] == "batch.finished"}
        assert finished == set(batches)
        assert all(r.checked for r in got), "an event arrived before its change committed"
        log = deliveries(client, hook["id"])
        assert all(d["status"] == "delivered" for d in log)
        assert any(d["attempts"] > 1 for d in log)  # the first ones were tried while it was down
    finally:
        receiver.stop()
