"""What the console reads besides the resources themselves, against a real worker: a
document's extracted text with its chunks, a collection's recent batches, its size and
waiting stages, the caller (`/v1/me`), and the daily series from the analytics views."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from services.db import Database
from tests.support.api import ingest, query, wait_finished

pytestmark = pytest.mark.usefixtures("worker")

# characters beyond the BMP: offsets count code points, not UTF-16 units
TEXT = " ".join(
    f"Sentence {n} 🚢 tells of tides, ferries and the harbour master." for n in range(120)
)


def test_a_documents_chunks_mark_its_text(api: Any, make_collection: Any, db: Database) -> None:
    name = make_collection(chunk_tokens=64, chunk_overlap=8)
    batch = ingest(api, name, [{"id": "log", "title": "Harbour log", "text": TEXT}])
    wait_finished(api, batch["batch_id"])
    shown = api.get(f"/v1/collections/{name}/documents/log/chunks")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["text"] == TEXT and body["document"]["id"] == "log"
    chunks = body["chunks"]
    assert len(chunks) == body["document"]["chunks"] > 3
    assert [c["ordinal"] for c in chunks] == list(range(len(chunks)))
    assert chunks[0]["start"] == 0 and chunks[-1]["end"] == len(TEXT)
    for chunk, after in itertools.pairwise(chunks):
        assert chunk["start"] < after["start"] <= chunk["end"]  # in order, overlapping a little
    assert sum(c["tokens"] for c in chunks) >= body["document"]["tokens"]
    assert all(c["cost_usd"] is None for c in chunks)  # the hash embedder has no price
    assert body["truncated"] is False
    missing = api.get(f"/v1/collections/{name}/documents/nope/chunks")
    assert missing.status_code == 404
    assert body["stale"] is False and all(c["text"] is None for c in chunks)

    # a newer version accepted but not yet searchable: the chunks carry their own text
    with db.scope() as session:
        session.execute(
            text(
                "UPDATE documents SET version = version + 1, status = 'queued', content = 'new'"
                " WHERE external_id = 'log'"
                " AND collection_id = (SELECT id FROM collections WHERE name = :c)"
            ),
            {"c": name},
        )
    stale = api.get(f"/v1/collections/{name}/documents/log/chunks").json()
    assert stale["stale"] is True and stale["text"] == "new"
    assert [c["text"] for c in stale["chunks"]] == [TEXT[c["start"] : c["end"]] for c in chunks]


def test_a_collection_shows_its_batches_size_and_stages(api: Any, make_collection: Any) -> None:
    name = make_collection()
    first = ingest(api, name, [{"id": "a", "text": "Alpha."}])["batch_id"]
    second = ingest(api, name, [{"id": "b", "text": "Beta."}, {"id": "c", "text": "Gamma."}])
    wait_finished(api, second["batch_id"])
    wait_finished(api, first)
    listed = api.get(f"/v1/collections/{name}/batches").json()["batches"]
    assert [b["batch_id"] for b in listed] == [second["batch_id"], first]  # newest first
    assert [b["total"] for b in listed] == [2, 1] and all(b["finished"] for b in listed)
    detail = api.get(f"/v1/collections/{name}").json()
    assert detail["size_bytes"] > 0
    assert {s["stage"]: s["documents"] for s in detail["stages"]} == {"ingest": 0, "embed": 0}


def test_me_and_the_daily_series(api: Any, make_collection: Any) -> None:
    me = api.get("/v1/me").json()
    assert me["server_admin"] is True and "admin" in me["scopes"]
    name = make_collection()
    batch = ingest(api, name, [{"id": "t", "text": "The tide turns at noon."}])
    wait_finished(api, batch["batch_id"])
    assert query(api, name, "quantum penguins on Jupiter")["grounded"] is False
    assert query(api, name, "When does the tide turn?")["grounded"] is True
    daily = api.get("/v1/analytics/daily", params={"days": 7, "collection": name})
    assert daily.status_code == 200, daily.text
    body = daily.json()
    today = datetime.now(UTC).date().isoformat()
    assert body["ingest"] == [{"day": today, "documents": 1, "done": 1, "failed": 0}]
    (queries,) = body["queries"]
    assert (queries["queries"], queries["grounded"], queries["grounded_rate"]) == (2, 1, 0.5)
    (gap,) = body["knowledge_gaps"]
    assert gap["question"] == "quantum penguins on Jupiter" and gap["collection"] == name
    assert api.get("/v1/analytics/daily", params={"days": 0}).status_code == 422
