"""Event streams from a real API process over real HTTP: a collection's document events as a
worker processes its documents, a reconnect with Last-Event-ID that misses nothing, a batch's
progress to its end, heartbeats, and streams that hold no request slot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.cluster import start_api
from tests.support.processes import stop
from tests.support.sse import Event, EventReader

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def server(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        **service_env,
        "GROUNDWIRE_EVENTS_HEARTBEAT_S": "0.5",
        "GROUNDWIRE_MAX_INFLIGHT_REQUESTS": "3",
    }
    api, url = start_api(env, tmp_path_factory.mktemp("events") / "api.log")
    yield url
    stop(api)


@pytest.fixture
def client(server: str, admin_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers=admin_headers, timeout=30) as http:
        yield http


def collection(client: httpx.Client, embedder: str = "hash") -> str:
    name = f"ev-{uuid.uuid4().hex[:8]}"
    made = client.post("/v1/collections", json={"name": name, "embedder": embedder})
    assert made.status_code == 201, made.text
    return name


def ingest(client: httpx.Client, name: str, ids: list[str], text: str = "Ferries") -> str:
    docs = [{"id": i, "text": f"{text} leave the harbour at {n} o'clock."} for n, i in
            enumerate(ids)]  # fmt: skip
    accepted = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["batch_id"])


def statuses(events: list[Event]) -> dict[str, list[str]]:
    by_document: dict[str, list[str]] = {}
    for event in events:
        if event.event == "document":
            by_document.setdefault(event.data["id"], []).append(event.data["status"])
    return by_document


def all_done(ids: list[str]) -> Any:
    return lambda events: all(statuses(events).get(i, [""])[-1] == "done" for i in ids)


def test_a_collection_streams_each_documents_changes(
    server: str, client: httpx.Client, admin_headers: dict[str, str]
) -> None:
    name = collection(client)
    reader = EventReader(f"{server}/v1/collections/{name}/events", admin_headers)
    try:
        assert reader.status == 200
        ids = ["a", "b", "c"]
        ingest(client, name, ids)
        events = reader.until(all_done(ids))
        for doc in ids:
            assert statuses(events)[doc] == ["queued", "processing", "done"]
        assert all(e.data["version"] == 1 and e.id is not None for e in events)
        assert [int(e.id or 0) for e in events] == sorted(int(e.id or 0) for e in events)
        assert client.delete(f"/v1/collections/{name}/documents/b").status_code == 204
        gone = reader.until(lambda seen: "deleted" in statuses(seen).get("b", []))
        assert statuses(gone) == {"b": ["deleted"]}
    finally:
        reader.close()
    assert client.delete(f"/v1/collections/{name}").status_code == 204  # its documents too


def test_a_reconnect_with_last_event_id_misses_nothing(
    server: str, client: httpx.Client, admin_headers: dict[str, str]
) -> None:
    name = collection(client)
    url = f"{server}/v1/collections/{name}/events"
    first = EventReader(url, admin_headers)
    ingest(client, name, ["one"])
    seen = first.until(all_done(["one"]))
    first.close()
    last = seen[-1].id
    assert last is not None
    ingest(client, name, ["two", "three"])  # while no one listens
    client.get(f"/v1/collections/{name}")
    again = EventReader(url, {**admin_headers, "Last-Event-ID": last})
    try:
        missed = again.until(all_done(["two", "three"]))
        assert statuses(missed)["two"] == ["queued", "processing", "done"]
        assert "one" not in statuses(missed)  # it had everything of "one"
    finally:
        again.close()
    # from the start: every event, each with its own id to resume from
    everything = EventReader(url, {**admin_headers, "Last-Event-ID": "0"})
    try:
        replayed = everything.until(all_done(["one", "two", "three"]))
        ids = [int(e.id or 0) for e in replayed]
        assert ids == sorted(set(ids)) and len(ids) == 9
    finally:
        everything.close()


def test_a_batch_streams_progress_then_finished_and_ends(
    server: str, client: httpx.Client, admin_headers: dict[str, str]
) -> None:
    name = collection(client)
    batch = ingest(client, name, [f"d{i}" for i in range(20)])
    reader = EventReader(f"{server}/v1/batches/{batch}/events", admin_headers)
    events = reader.until(lambda seen: bool(seen) and seen[-1].event == "finished")
    assert reader.ended.wait(10), "the stream did not end after finished"
    reader.close()
    progress = [e.data for e in events if e.event == "progress"]
    assert set(progress[0]) == {"total", "queued", "processing", "done", "failed", "unchanged"}
    assert progress[-1]["done"] == 20 and progress[-1]["total"] == 20
    assert events[-1].data == progress[-1]
    done = [p["done"] for p in progress]
    assert done == sorted(done)
    again = EventReader(f"{server}/v1/batches/{batch}/events", admin_headers)
    assert [e.event for e in again.until(lambda seen: len(seen) == 2)] == ["progress", "finished"]
    again.close()


def test_idle_streams_get_heartbeats_and_hold_no_request_slot(
    server: str, client: httpx.Client, admin_headers: dict[str, str]
) -> None:
    name = collection(client)
    readers = [
        EventReader(f"{server}/v1/collections/{name}/events", admin_headers) for _ in range(15)
    ]
    try:
        # five times the 3 requests in progress, more than the 10 database connections
        assert all(r.status == 200 for r in readers)
        assert client.get(f"/v1/collections/{name}").status_code == 200
        assert len(readers[0].comments(1.6)) >= 2
        batch = ingest(client, name, ["late"])  # and every stream still gets its events
        assert client.get(f"/v1/batches/{batch}").status_code == 200
        for reader in readers:
            reader.until(all_done(["late"]))
    finally:
        for reader in readers:
            reader.close()


def test_streams_answer_only_what_the_key_may_see(
    server: str, client: httpx.Client, admin_headers: dict[str, str]
) -> None:
    name = collection(client)
    assert client.get(f"/v1/batches/{uuid.uuid4()}/events").status_code == 404
    assert client.get("/v1/collections/no-such-one/events").status_code == 404
    assert (
        client.get(
            f"/v1/collections/{name}/events", headers={"Last-Event-ID": "yesterday"}
        ).status_code
        == 400
    )
    anonymous = httpx.get(f"{server}/v1/collections/{name}/events", timeout=10)
    assert anonymous.status_code == 401
    # a reader bound to principals sees the events of documents it may read, and no others
    key = client.post(
        "/v1/keys", json={"name": "reader", "scopes": ["read"], "principals": ["team:ops"]}
    )
    assert key.status_code == 201, key.text
    reader_headers = {"Authorization": f"Bearer {key.json()['key']}"}
    reader = EventReader(f"{server}/v1/collections/{name}/events", reader_headers)
    try:
        docs = [
            {"id": "open", "text": "Open to all."},
            {"id": "ops", "text": "Ops only.", "access": ["team:ops"]},
            {"id": "hr", "text": "HR only.", "access": ["team:hr"]},
        ]
        posted = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
        assert posted.status_code == 202, posted.text
        events = reader.until(all_done(["open", "ops"]))
        client.get(f"/v1/batches/{posted.json()['batch_id']}")
        assert "hr" not in statuses(events)
    finally:
        reader.close()


def test_a_failed_document_says_why(
    server: str, client: httpx.Client, admin_headers: dict[str, str], fake_openai: Any
) -> None:
    fake_openai.reset(reject_marker="POISON")
    try:
        name = collection(client, embedder="openai:text-embedding-3-small")
        reader = EventReader(f"{server}/v1/collections/{name}/events", admin_headers)
        ingest(client, name, ["bad"], text="POISON")
        events = reader.until(lambda seen: "failed" in statuses(seen).get("bad", []))
        reader.close()
        failed = next(e for e in events if e.data["status"] == "failed")
        assert failed.data["error_class"]
    finally:
        fake_openai.reset()
