"""Changing a live collection's embedder and chunking: a real API, worker and beat. The shadow
space is built from the stored text while documents change, is tried with `"space": "shadow"`,
gets a threshold matched on the query log, and is switched to and back in one transaction
each; a second migration to a space already built embeds nothing."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from services.db import Database
from services.runtime import Runtime
from tests.support.api import ingest, query, top_document, wait_finished
from tests.support.processes import spawn, stop
from tests.support.waiting import wait_for
from workers import space_driver

pytestmark = pytest.mark.usefixtures("worker")

EVENTS = ("ready", "active", "rolled_back", "failed")
WORDS = [
    "harbour",
    "lantern",
    "meadow",
    "quartz",
    "violet",
    "ember",
    "canyon",
    "orchard",
    "glacier",
    "falcon",
    "saffron",
    "tundra",
    "cobalt",
    "willow",
    "marble",
    "thistle",
    "beacon",
    "juniper",
]


@pytest.fixture(scope="module")
def beat(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Beat sending migration ticks often to the suite's worker."""
    logs = tmp_path_factory.mktemp("migrations")
    env = {**service_env, "GROUNDWIRE_MIGRATION_POLL_S": "0.3"}
    process = spawn(
        [
            *(sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat"),
            *("--schedule", str(logs / "beat-schedule"), "--loglevel", "WARNING"),
        ],
        env,
        logs / "beat.log",
    )
    yield
    stop(process)


def text_of(i: int, topic: str = "") -> str:
    """A document of a few sentences, with a phrase of its own (`marker i`)."""
    words = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(12))
    return (
        f"Document {i} is about {topic or WORDS[i % len(WORDS)]}. marker{i} appears here. "
        + " ".join(f"Sentence {j} mentions {words}." for j in range(6))
    )


def migration(api: TestClient, name: str, mid: int) -> dict[str, Any]:
    response = api.get(f"/v1/collections/{name}/migrations/{mid}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_ready(api: TestClient, name: str, mid: int, timeout: float = 120) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = migration(api, name, mid)
        assert found["status"] in ("building", "ready"), found
        return found if found["status"] == "ready" else None

    return dict(wait_for(ready, timeout=timeout, interval=0.2))


def chunk_shape(database_url: str, collection_id: int) -> tuple[set[int], int]:
    """The dimensions of the vectors in the collection's partition, and its largest chunk."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT vector_dims(embedding), max(token_count) FROM chunks_c{int(collection_id)}"
            " GROUP BY 1"
        ).fetchall()
    return {int(d) for d, _ in rows}, max(int(t) for _, t in rows)


def collection_id(db: Database, name: str) -> int:
    with db.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT id FROM collections WHERE name = %s", (name,)).first()
    assert row is not None
    return int(row[0])


def texts_embedded(database_url: str, space: str, since: str) -> int:
    """How many texts the ledger says were embedded in `space` since `since`."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(inputs), 0) FROM embedding_requests WHERE space = %s AND at >= %s",
            (space, since),
        ).fetchone()
    assert row is not None
    return int(row[0])


def add_receiver(database_url: str, collection: str) -> str:
    """A webhook row for the migration events of `collection`, to a loopback address that the
    deliverer refuses (nothing is sent anywhere); returns its id."""
    hook = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhooks (id, workspace_id, url, events, collections, secret)"
            " SELECT %s, workspace_id, 'http://127.0.0.1:9/hook', %s, %s, 'whsec_test'"
            " FROM collections WHERE name = %s",
            (hook, [f"migration.{s}" for s in EVENTS], [collection], collection),
        )
    return hook


def events_of(database_url: str, hook: str) -> list[tuple[str, int, str]]:
    """The migration events written for the webhook: (type, migration, status), in order."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT event_type, data FROM webhook_deliveries WHERE webhook_id = %s ORDER BY seq",
            (hook,),
        ).fetchall()
        conn.execute("DELETE FROM webhooks WHERE id = %s", (hook,))
    return [(t, int(d["migration"]), d["status"]) for t, d in rows]


@pytest.mark.usefixtures("beat")
def test_migration_builds_catches_up_switches_and_rolls_back(
    api: TestClient, make_collection: Any, db: Database, database_url: str
) -> None:
    name = make_collection("hash", chunk_tokens=40, chunk_overlap=0)
    cid = collection_id(db, name)
    hook = add_receiver(database_url, name)
    docs = [{"id": f"d{i}", "text": text_of(i)} for i in range(40)]
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    for i in range(35):  # a query log to match the threshold on
        query(api, name, f"what is {WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]} {i}")
    before = api.get(f"/v1/collections/{name}").json()

    started = api.post(
        f"/v1/collections/{name}/migrations", json={"embedder": "hash:128", "chunk_tokens": 24}
    )
    assert started.status_code == 202, started.text
    mid = started.json()["id"]
    assert started.json()["status"] == "building"
    again = api.post(f"/v1/collections/{name}/migrations", json={"chunk_tokens": 30})
    assert again.status_code == 409, again.text
    bulk = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": True})
    assert bulk.status_code == 409, bulk.text

    # Changes while it builds: new, updated and deleted documents.
    changes = [{"id": f"n{i}", "text": text_of(100 + i)} for i in range(5)]
    changes += [{"id": f"d{i}", "text": text_of(200 + i, "revised")} for i in range(3)]
    changed = ingest(api, name, changes)
    for i in (10, 11):
        assert api.delete(f"/v1/collections/{name}/documents/d{i}").status_code == 204
    # The active space answers as before meanwhile, and the shadow space can be tried.
    assert top_document(api, name, "marker5") == "d5"
    tried = api.post(f"/v1/collections/{name}/query", json={"query": "marker6", "space": "shadow"})
    assert tried.status_code == 200, tried.text
    wait_finished(api, changed["batch_id"])

    ready = wait_ready(api, name, mid)
    assert ready["total"] == ready["done"] == 43, ready  # 40 + 5 new - 2 deleted
    assert ready["threshold"]["method"] == "query_log", ready
    # the 35 above and "marker5"; the trial of the shadow space is not logged
    assert ready["threshold"]["detail"]["questions"] == 36
    assert ready["embedded"] > 0
    # The active space is untouched until the switch.
    assert chunk_shape(database_url, cid)[0] == {256}
    assert top_document(api, name, "marker6", space="shadow") == "d6"

    activated = api.post(f"/v1/collections/{name}/migrations/{mid}/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    after = api.get(f"/v1/collections/{name}").json()
    assert (after["embedder"], after["dimensions"], after["chunk_tokens"]) == ("hash:128", 128, 24)
    assert after["threshold"] == pytest.approx(ready["threshold"]["new"])
    dims, tokens = chunk_shape(database_url, cid)
    assert dims == {128} and tokens <= 24
    assert after["documents"]["done"] == 43, after["documents"]
    # Every change made during the build is there.
    assert top_document(api, name, "marker102") == "n2"
    assert top_document(api, name, "marker201") == "d1"
    assert top_document(api, name, "marker1") != "d1"
    assert top_document(api, name, "marker10") != "d10"
    assert all(
        r["document_id"] != "d11"
        for r in query(api, name, "marker11", mode="keyword", min_score=-1)["results"]
    )
    shadow = api.post(f"/v1/collections/{name}/query", json={"query": "x", "space": "shadow"})
    assert shadow.status_code == 409

    # A change after the switch, then back: the old space answers again, with the change.
    late = ingest(api, name, [{"id": "late", "text": text_of(300)}])
    wait_finished(api, late["batch_id"])
    back = api.post(f"/v1/collections/{name}/migrations/{mid}/rollback")
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "rolled_back"
    restored = api.get(f"/v1/collections/{name}").json()
    assert (restored["embedder"], restored["chunk_tokens"]) == ("hash", 40)
    assert restored["threshold"] == pytest.approx(before["threshold"])
    assert chunk_shape(database_url, cid)[0] == {256}
    wait_for(lambda: top_document(api, name, "marker300") == "late", timeout=60)
    assert top_document(api, name, "marker102") == "n2"
    assert top_document(api, name, "marker201") == "d1"

    # Migrating again to the space already built embeds nothing: its vectors are cached.
    again = api.post(
        f"/v1/collections/{name}/migrations", json={"embedder": "hash:128", "chunk_tokens": 24}
    )
    assert again.status_code == 202, again.text
    second = again.json()["id"]
    started_at = again.json()["created_at"]
    rebuilt = wait_ready(api, name, second)
    assert rebuilt["embedded"] == 0, rebuilt
    assert rebuilt["cached"] > 0
    assert rebuilt["cached"] >= rebuilt["done"] == 44
    # What was embedded is only the logged questions asked since the first calibration.
    asked = rebuilt["threshold"]["detail"]["questions_embedded"]
    assert texts_embedded(database_url, "hash:v1:128", started_at) == asked < 10
    gone = api.delete(f"/v1/collections/{name}/migrations/{second}")
    assert gone.status_code == 200 and gone.json()["status"] == "failed"
    assert gone.json()["error"] == "abandoned"
    listed = api.get(f"/v1/collections/{name}/migrations").json()["migrations"]
    assert [m["id"] for m in listed] == [second, mid]
    assert events_of(database_url, hook) == [
        ("migration.ready", mid, "ready"),
        ("migration.active", mid, "active"),
        ("migration.rolled_back", mid, "rolled_back"),
        ("migration.ready", second, "ready"),
        ("migration.failed", second, "failed"),
    ]


def test_migration_requests_are_checked(api: TestClient, make_collection: Any) -> None:
    name = make_collection("hash")
    base = f"/v1/collections/{name}/migrations"
    assert api.post(base, json={}).status_code == 422
    assert api.post(base, json={"embedder": "nope"}).status_code == 422
    assert api.post(base, json={"embedder": "hash"}).status_code == 422  # nothing changes
    assert api.post(base, json={"chunk_tokens": 64, "chunk_overlap": 64}).status_code == 422
    assert api.get(f"{base}/{2**62}").status_code == 404
    assert api.get(f"{base}/{2**70}").status_code == 422
    assert api.post(f"{base}/1/activate").status_code == 404
    unknown = f"/v1/collections/{uuid.uuid4().hex[:8]}/migrations"
    assert api.post(unknown, json={"chunk_tokens": 64}).status_code == 404


def test_migrating_back_embeds_nothing_and_a_kept_space_is_dropped_after_retention(
    api: TestClient, make_collection: Any, db: Database, database_url: str, runtime: Runtime
) -> None:
    """To the space the collection left and back: the vectors of both spaces are cached (the
    chunks' and the logged questions'), so the way back embeds nothing. Past its retention,
    the space not in use is dropped with its cache rows, and there is no way back."""
    name = make_collection("hash:96", chunk_tokens=40, chunk_overlap=0)
    cid = collection_id(db, name)
    docs = [{"id": f"d{i}", "text": text_of(i)} for i in range(20)]
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    for i in range(32):
        query(api, name, f"which {WORDS[i % len(WORDS)]} {WORDS[(i * 5) % len(WORDS)]} {i}")
    base = f"/v1/collections/{name}/migrations"
    with space_driver.ticking(runtime):
        there = api.post(base, json={"embedder": "hash:80", "chunk_tokens": 30}).json()
        assert wait_ready(api, name, there["id"])["embedded"] > 0
        assert api.post(f"{base}/{there['id']}/activate").status_code == 200
        back = api.post(base, json={"embedder": "hash:96", "chunk_tokens": 40, "chunk_overlap": 0})
        assert back.status_code == 202, back.text
        ready = wait_ready(api, name, back.json()["id"])
    since = back.json()["created_at"]
    assert ready["embedded"] == 0 and ready["cached"] > 0, ready
    assert ready["threshold"]["detail"]["questions_embedded"] == 0, ready["threshold"]
    assert texts_embedded(database_url, "hash:v1:96", since) == 0
    assert texts_embedded(database_url, "hash:v1:80", since) == 0
    # The earlier switch's kept space went when the new migration started.
    assert migration(api, name, there["id"])["retained_until"] is None

    assert api.post(f"{base}/{back.json()['id']}/activate").status_code == 200
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE space_migrations SET drop_after = now() WHERE id = %s", (back.json()["id"],)
        )
    space_driver.tick(runtime)
    with psycopg.connect(database_url, autocommit=True) as conn:
        table = conn.execute(
            "SELECT to_regclass(%s)", (f"chunks_c{cid}_m{back.json()['id']}",)
        ).fetchone()
        cached = conn.execute(
            "SELECT count(*) FROM embedding_cache WHERE space = 'hash:v1:80'"
        ).fetchone()
    assert table == (None,) and cached == (0,)
    assert migration(api, name, back.json()["id"])["retained_until"] is None
    refused = api.post(f"{base}/{back.json()['id']}/rollback")
    assert refused.status_code == 409 and "dropped" in refused.text
    assert chunk_shape(database_url, cid)[0] == {96}
    assert top_document(api, name, "marker7") == "d7"


def test_a_document_the_new_embedder_refuses_blocks_the_switch(
    api: TestClient, make_collection: Any, runtime: Runtime, fake_openai: Any
) -> None:
    """A provider that rejects one document's text fails that document's build only; the
    migration says so, and activating it is refused (the switch would lose the document)."""
    fake_openai.reset(dimensions=24, reject_marker="POISON")
    name = make_collection("hash")
    docs = [{"id": f"d{i}", "text": text_of(i)} for i in range(6)]
    docs.append({"id": "poison", "text": "This note carries a POISON marker."})
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    base = f"/v1/collections/{name}/migrations"
    with space_driver.ticking(runtime):
        started = api.post(base, json={"embedder": "openai:shadow-model"})
        assert started.status_code == 202, started.text
        ready = wait_ready(api, name, started.json()["id"])
    assert (ready["total"], ready["done"], ready["failed"]) == (7, 7, 1), ready
    refused = api.post(f"{base}/{started.json()['id']}/activate")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "not_buildable" and "poison" in error["message"], error
    assert api.get(f"/v1/collections/{name}").json()["embedder"] == "hash"
    assert api.delete(f"{base}/{started.json()['id']}").status_code == 200
