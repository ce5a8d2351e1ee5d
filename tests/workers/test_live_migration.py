"""A live migration at size: 2,000 documents move from `hash` to the bundled local model while
four clients query, ingest, update and delete through a real API. No request fails, every
answer comes from exactly one space (its embedder and threshold agree), every change made
during the build is there after the switch, and rolling back restores the old answers."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.api import top_document
from tests.support.cluster import start_api
from tests.support.processes import spawn, stop
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("worker")]

DOCUMENTS = 2000
TOPICS = [
    "harbour tides and the pilots who guide ships",
    "orchard pruning in late winter",
    "glacier retreat measured by satellites",
    "falcon migration over the mountains",
    "marble quarries and their stone masons",
    "juniper berries in traditional cooking",
    "cobalt pigments in old ceramics",
    "tundra soils and their permafrost",
]


def text_of(i: int, version: int = 1) -> str:
    topic = TOPICS[i % len(TOPICS)]
    return f"Note {i} (version {version}) on {topic}. Its code word is kw{i}v{version}."


@dataclass
class Outcomes:
    """What the clients saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    answers: list[tuple[str | None, float]] = field(default_factory=list)
    created: set[int] = field(default_factory=set)
    updated: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code >= 400:
                self.errors.append(f"{response.request.url.path}: {response.text[:200]}")


@pytest.fixture(scope="module")
def stack(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("live-migration")
    env = {**service_env, "GROUNDWIRE_MIGRATION_POLL_S": "0.5"}
    api, url = start_api(env, logs / "api.log")
    beat = spawn(
        [
            *(sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat"),
            *("--schedule", str(logs / "beat-schedule"), "--loglevel", "WARNING"),
        ],
        env,
        logs / "beat.log",
    )
    yield url
    stop(beat)
    stop(api)


def wait_batches(client: httpx.Client, batches: list[str], timeout: float = 300) -> None:
    def finished() -> bool:
        return all(client.get(f"/v1/batches/{b}").json()["finished"] for b in batches)

    wait_for(finished, timeout=timeout, interval=0.5)


def test_live_migration_to_the_local_model(stack: str, admin_headers: dict[str, str]) -> None:
    name = f"live-{random.randrange(10**8)}"
    client = httpx.Client(base_url=stack, headers=admin_headers, timeout=60)
    assert (
        client.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code == 201
    )
    batches = []
    for start in range(0, DOCUMENTS, 500):
        docs = [{"id": f"d{i}", "text": text_of(i)} for i in range(start, start + 500)]
        response = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
        assert response.status_code == 202, response.text
        batches.append(response.json()["batch_id"])
    wait_batches(client, batches)
    for i in range(40):  # the query log the threshold is matched on
        client.post(f"/v1/collections/{name}/query", json={"query": TOPICS[i % 8] + f" {i}"})
    before = client.get(f"/v1/collections/{name}").json()

    started = client.post(f"/v1/collections/{name}/migrations", json={"embedder": "local"})
    assert started.status_code == 202, started.text
    mid = started.json()["id"]
    seen = Outcomes()
    stop_clients = threading.Event()
    rng = random.Random(7)
    batches_during: list[str] = []

    def querier() -> None:
        with httpx.Client(base_url=stack, headers=admin_headers, timeout=60) as http:
            while not stop_clients.is_set():
                i = rng.randrange(DOCUMENTS)
                response = http.post(
                    f"/v1/collections/{name}/query",
                    json={"query": f"{TOPICS[i % 8]} note {i}", "mode": "hybrid"},
                )
                seen.saw(response)
                if response.status_code == 200:
                    body = response.json()
                    with seen.lock:
                        seen.answers.append((body["embedder"], body["threshold"]))

    def writer(kind: str) -> None:
        with httpx.Client(base_url=stack, headers=admin_headers, timeout=60) as http:
            n = 0
            while not stop_clients.is_set() and n < 60:
                n += 1
                if kind == "ingest":
                    i = DOCUMENTS + len(seen.created)
                    docs = [{"id": f"d{i}", "text": text_of(i)}]
                    response = http.post(
                        f"/v1/collections/{name}/documents", json={"documents": docs}
                    )
                    seen.saw(response)
                    if response.status_code == 202:
                        seen.created.add(i)
                        batches_during.append(response.json()["batch_id"])
                elif kind == "update":
                    i = 2 * n
                    docs = [{"id": f"d{i}", "text": text_of(i, 2)}]
                    response = http.post(
                        f"/v1/collections/{name}/documents", json={"documents": docs}
                    )
                    seen.saw(response)
                    if response.status_code == 202:
                        seen.updated.add(i)
                        batches_during.append(response.json()["batch_id"])
                else:
                    i = 2 * n + 1
                    response = http.delete(f"/v1/collections/{name}/documents/d{i}")
                    seen.saw(response)
                    if response.status_code == 204:
                        seen.deleted.add(i)
                time.sleep(0.2)

    threads = [threading.Thread(target=querier)] + [
        threading.Thread(target=writer, args=(kind,)) for kind in ("ingest", "update", "delete")
    ]
    for thread in threads:
        thread.start()

    def ready() -> dict[str, Any] | None:
        found = client.get(f"/v1/collections/{name}/migrations/{mid}").json()
        assert found["status"] in ("building", "ready"), found
        return found if found["status"] == "ready" else None

    built = wait_for(ready, timeout=400, interval=1.0)
    activated = client.post(f"/v1/collections/{name}/migrations/{mid}/activate")
    assert activated.status_code == 200, activated.text
    time.sleep(3)  # the clients go on across the switch
    stop_clients.set()
    for thread in threads:
        thread.join(timeout=120)
    wait_batches(client, batches_during)

    print(
        f"\nlive migration: {sum(seen.statuses.values())} requests {seen.statuses},"
        f" {len(seen.answers)} answers, {len(seen.created)} created, {len(seen.updated)}"
        f" updated, {len(seen.deleted)} deleted; built in"
        f" {(built['ready_at'] or '')} from {built['created_at']}; threshold {built['threshold']}"
    )
    assert seen.errors == [], seen.errors[:5]
    new_threshold = activated.json()["threshold"]["new"]
    assert built["threshold"]["method"] == "query_log"
    spaces = {"hash": before["threshold"], "local": new_threshold}
    mixed = [(e, t) for e, t in seen.answers if e not in spaces or abs(t - spaces[e]) > 1e-9]
    assert mixed == [], mixed[:5]
    assert {e for e, _ in seen.answers} == {"hash", "local"}, "the queries spanned the switch"

    after = client.get(f"/v1/collections/{name}").json()
    assert after["embedder"] == "local"
    expected = DOCUMENTS + len(seen.created) - len(seen.deleted)
    assert after["documents"]["done"] == expected, after["documents"]
    for i in sorted(seen.created)[:10] + sorted(seen.updated)[:10]:
        version = 2 if i in seen.updated else 1
        assert top_document(client, name, f"kw{i}v{version}") == f"d{i}"
    for i in sorted(seen.deleted)[:10]:
        assert top_document(client, name, f"kw{i}v1") != f"d{i}"
    local_answer = top_document(client, name, "kw1500v1")
    assert local_answer == "d1500"

    back = client.post(f"/v1/collections/{name}/migrations/{mid}/rollback")
    assert back.status_code == 200, back.text
    restored = client.post(f"/v1/collections/{name}/query", json={"query": "kw1500v1"}).json()
    assert restored["embedder"] == "hash"
    assert restored["threshold"] == pytest.approx(before["threshold"])
    assert top_document(client, name, "kw1500v1") == "d1500"
    for i in sorted(seen.updated)[:10]:
        assert top_document(client, name, f"kw{i}v2") == f"d{i}"
    client.delete(f"/v1/collections/{name}")
    client.close()
