"""The webhook outbox in the database: a document's change writes its deliveries in its own
transaction (none when it rolls back, none for other workspaces, other collections or
events not asked for), a batch's `batch.finished` is written once when its last document
has committed, and the sweeper deletes ended deliveries past their retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from services.db import Database
from services.webhooks.outbox import finish_batches
from tests.support.webhooks import drop_outside_webhooks
from workers.sweeper import prune_deliveries

PUBLIC = "https://93.184.216.34/hooks"


@pytest.fixture(autouse=True)
def _forget_webhooks(db: Database) -> Iterator[None]:
    yield
    drop_outside_webhooks(db)  # no later delivery tick may send anything there


def webhook(api: Any, events: list[str], collections: list[str] | None = None) -> str:
    body: dict[str, Any] = {"url": PUBLIC, "events": events}
    if collections is not None:
        body["collections"] = collections
    made = api.post("/v1/webhooks", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def deliveries(db: Database, hook: str) -> list[tuple[str, dict[str, Any]]]:
    with db.scope() as session:
        rows = session.execute(
            text(
                "SELECT event_type, data FROM webhook_deliveries WHERE webhook_id = :id"
                " ORDER BY seq"
            ),
            {"id": hook},
        ).all()
    return [(str(t), dict(d)) for t, d in rows]


def set_status(db: Database, collection: str, ids: list[str], status: str) -> None:
    with db.scope() as session:
        session.execute(
            text(
                "UPDATE documents SET status = :status WHERE external_id = ANY(:ids)"
                " AND collection_id = (SELECT id FROM collections WHERE name = :c)"
            ),
            {"status": status, "ids": ids, "c": collection},
        )


def ingest(db: Database, collection: str, ids: list[str]) -> str:
    """A batch of queued documents, written as the API would but with nothing sent to the
    broker, so no worker (the suite's runs on) ever moves them on by itself."""
    batch = str(uuid.uuid4())
    with db.scope() as session:
        collection_id = session.execute(
            text("SELECT id FROM collections WHERE name = :c"), {"c": collection}
        ).scalar_one()
        session.execute(
            text("INSERT INTO ingest_batches (id, collection_id, total) VALUES (:b, :c, :n)"),
            {"b": batch, "c": collection_id, "n": len(ids)},
        )
        for external_id in ids:
            document = session.execute(
                text(
                    "INSERT INTO documents (collection_id, external_id, content, content_hash)"
                    " VALUES (:c, :e, :t, md5(:t)) RETURNING id"
                ),
                {"c": collection_id, "e": external_id, "t": f"Text of {external_id}."},
            ).scalar_one()
            session.execute(
                text(
                    "INSERT INTO batch_items (batch_id, document_id, version, accepted_status)"
                    " VALUES (:b, :d, 1, 'queued')"
                ),
                {"b": batch, "d": document},
            )
    return batch


def test_a_change_writes_its_deliveries_in_its_own_transaction(
    api: Any, make_collection: Any, db: Database
) -> None:
    name, other = make_collection(), make_collection()
    done_only = webhook(api, ["document.done"], [name])
    failures = webhook(api, ["document.failed"])
    elsewhere = webhook(api, ["document.done"], [other])
    ingest(db, name, ["a", "b"])  # they stay queued until this test moves them
    assert deliveries(db, done_only) == []  # queued is no event a webhook can ask for
    set_status(db, name, ["a"], "done")
    (only,) = deliveries(db, done_only)
    assert only == (
        "document.done",
        {"collection": name, "id": "a", "version": 1, "status": "done"},
    )
    with db.scope() as session:  # a change that rolls back leaves nothing behind
        session.execute(
            text(
                "UPDATE documents SET status = 'done' WHERE external_id = 'b'"
                " AND collection_id = (SELECT id FROM collections WHERE name = :c)"
            ),
            {"c": name},
        )
        session.rollback()
    assert len(deliveries(db, done_only)) == 1
    with db.scope() as session:
        session.execute(
            text(
                "UPDATE documents SET status = 'failed', error_class = 'parse'"
                " WHERE external_id = 'b'"
                " AND collection_id = (SELECT id FROM collections WHERE name = :c)"
            ),
            {"c": name},
        )
    assert deliveries(db, failures)[-1] == (
        "document.failed",
        {"collection": name, "id": "b", "version": 1, "status": "failed", "error_class": "parse"},
    )
    assert len(deliveries(db, done_only)) == 1  # it asked for done only
    assert deliveries(db, elsewhere) == []  # another collection's


def test_a_batch_is_finished_once_when_its_last_document_committed(
    api: Any, make_collection: Any, db: Database
) -> None:
    name = make_collection()
    hook = webhook(api, ["batch.finished"], [name])
    batch = ingest(db, name, ["x", "y", "z"])
    with db.scope() as session:
        finish_batches(session)
    assert deliveries(db, hook) == []
    set_status(db, name, ["x", "y"], "done")
    with db.scope() as session:
        finish_batches(session)
    assert deliveries(db, hook) == []  # z is still queued
    set_status(db, name, ["z"], "failed")
    for _ in range(3):
        with db.scope() as session:
            finish_batches(session)
    finished = {"batch_id": batch, "collection": name, "total": 3, "done": 2, "failed": 1}
    assert deliveries(db, hook) == [("batch.finished", {**finished, "unchanged": 0, "deleted": 0})]


def test_ended_deliveries_past_their_retention_are_deleted(
    api: Any, make_collection: Any, db: Database
) -> None:
    hook = webhook(api, ["document.done"], [make_collection()])
    ids = {label: uuid.uuid4() for label in ("old-delivered", "new-delivered", "old-pending")}
    with db.scope() as session:
        for label, delivery in ids.items():
            old = label.startswith("old")
            session.execute(
                text(
                    "INSERT INTO webhook_deliveries"
                    " (id, webhook_id, event_type, occurred_at, data, status, delivered_at,"
                    "  last_attempt_at)"
                    " VALUES (:id, :hook, 'document.done', now(), '{}', :status,"
                    "  CASE WHEN :status = 'delivered' THEN now() - CAST(:age AS interval) END,"
                    "  now() - CAST(:age AS interval))"
                ),
                {
                    "id": delivery,
                    "hook": hook,
                    "status": "pending" if "pending" in label else "delivered",
                    "age": "8 days" if old else "1 hour",
                },
            )
    with db.scope() as session:
        prune_deliveries(session, retention_s=7 * 24 * 3600)
    with db.scope() as session:
        kept = set(
            session.execute(
                text("SELECT id FROM webhook_deliveries WHERE webhook_id = :h"), {"h": hook}
            ).scalars()
        )
    assert kept == {ids["new-delivered"], ids["old-pending"]}


def test_a_delivery_shows_its_latest_attempts_oldest_first(
    api: Any, make_collection: Any, db: Database
) -> None:
    hook = webhook(api, ["document.done"], [make_collection()])
    delivery = uuid.uuid4()
    with db.scope() as session:
        session.execute(
            text(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_type, occurred_at, data,"
                " attempts) VALUES (:id, :hook, 'document.done', now(), '{}', 25)"
            ),
            {"id": delivery, "hook": hook},
        )
        for n in range(25):
            session.execute(
                text(
                    "INSERT INTO webhook_attempts (delivery_id, status_code, latency_ms)"
                    " VALUES (:id, 500, :n)"
                ),
                {"id": delivery, "n": float(n)},
            )
    (shown,) = api.get(f"/v1/webhooks/{hook}/deliveries").json()["deliveries"]
    assert shown["attempts"] == 25
    assert shown["latencies_ms"] == [float(n) for n in range(5, 25)]  # the latest 20
    retried = api.post(f"/v1/webhooks/{hook}/deliveries/{delivery}/retry").json()
    assert retried["latencies_ms"] == shown["latencies_ms"]
