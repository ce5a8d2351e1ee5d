"""Failed documents are listed with their reasons and can be replayed, one or many."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import ingest, wait_finished, wait_status

pytestmark = pytest.mark.usefixtures("worker")


def test_failed_documents_are_listed_and_replayed(
    api: Any, fake_openai: Any, make_collection: Any
) -> None:
    fake_openai.reset(dimensions=32)
    name = make_collection("openai:dead-letter-model")
    fake_openai.reset(dimensions=32, reject_marker="POISON")
    docs = [
        {"id": "ok", "text": "an ordinary note about tea"},
        {"id": "bad-1", "text": "POISON one"},
        {"id": "bad-2", "text": "POISON two"},
    ]
    wait_finished(api, ingest(api, name, docs)["batch_id"], allow_failed=True)

    failed = api.get(f"/v1/collections/{name}/documents", params={"status": "failed"}).json()
    assert [d["id"] for d in failed["documents"]] == ["bad-1", "bad-2"]
    assert all("rejected" in d["error"] for d in failed["documents"]) and failed["next"] is None
    page = api.get(f"/v1/collections/{name}/documents", params={"limit": 2}).json()
    assert [d["id"] for d in page["documents"]] == ["bad-1", "bad-2"] and page["next"] == "bad-2"
    rest = api.get(f"/v1/collections/{name}/documents", params={"after": "bad-2"}).json()
    assert [d["id"] for d in rest["documents"]] == ["ok"]
    assert (
        api.get(f"/v1/collections/{name}/documents", params={"status": "lost"}).status_code == 422
    )

    fake_openai.reset(dimensions=32)  # the provider accepts them now
    one = api.post(f"/v1/collections/{name}/documents/bad-1/retry")
    assert one.status_code == 202 and one.json() == {
        "id": "bad-1",
        "status": "queued",
        "version": 1,
    }
    assert wait_status(api, name, "bad-1", "done")["error"] is None
    not_failed = api.post(f"/v1/collections/{name}/documents/ok/retry")
    assert not_failed.status_code == 409 and not_failed.json()["error"]["code"] == "not_failed"

    everything = api.post(f"/v1/collections/{name}/documents/retry", json={}).json()
    assert everything == {
        "retried": 1,
        "documents": [{"id": "bad-2", "status": "queued", "version": 1}],
    }
    wait_status(api, name, "bad-2", "done")
    assert api.get(f"/v1/collections/{name}/documents", params={"status": "failed"}).json() == {
        "documents": [],
        "next": None,
    }
