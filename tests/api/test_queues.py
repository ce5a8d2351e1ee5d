"""The queue-depth signal reports the broker's queue length and the oldest waiting document."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import text

from services.db import Database


def test_queue_depth_reports_broker_and_database(
    api: Any, make_collection: Any, service_env: Any, db: Database
) -> None:
    name = make_collection("hash")
    with db.scope() as session:
        session.execute(
            text(
                "INSERT INTO documents (collection_id, external_id, content, content_hash,"
                " enqueued_at) SELECT id, 'stale', 'x', 'h', now() - interval '1 hour'"
                " FROM collections WHERE name = :n"
            ),
            {"n": name},
        )
    queue = service_env["GROUNDWIRE_INGEST_QUEUE"]
    client = redis.Redis.from_url(service_env["REDIS_URL"])
    low = client.llen(queue)
    body = api.get("/v1/queues").json()
    high = client.llen(queue)
    ingest, embed = body["queues"]
    assert (ingest["name"], ingest["stage"]) == (queue, "ingest")
    assert (embed["name"], embed["stage"]) == (service_env["GROUNDWIRE_EMBED_QUEUE"], "embed")
    assert min(low, high) <= ingest["messages"] <= max(low, high)
    assert ingest["documents"] >= 1
    assert ingest["oldest_age_seconds"] >= 3600
    assert api.delete(f"/v1/collections/{name}").status_code == 204
