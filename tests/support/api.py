"""Helpers for tests that drive the API: ingest, wait for batches and documents, query."""

from __future__ import annotations

from typing import Any

from tests.support.waiting import wait_for


def ingest(api: Any, collection: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post(f"/v1/collections/{collection}/documents", json={"documents": documents})
    assert response.status_code == 202, response.text
    return dict(response.json())


def document(api: Any, collection: str, doc_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/collections/{collection}/documents/{doc_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_finished(
    api: Any, batch_id: str, timeout: float = 90.0, *, allow_failed: bool = False
) -> dict[str, Any]:
    """Waits until the batch has nothing queued or processing; fails on failures by default."""

    def finished() -> dict[str, Any] | None:
        batch = api.get(f"/v1/batches/{batch_id}").json()
        return batch if batch["finished"] else None

    batch = dict(wait_for(finished, timeout=timeout, interval=0.2))
    assert allow_failed or batch["failed"] == 0, batch
    return batch


def wait_status(
    api: Any, collection: str, doc_id: str, status: str, timeout: float = 90.0
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        doc = document(api, collection, doc_id)
        return doc if doc["status"] == status else None

    return dict(wait_for(reached, timeout=timeout, interval=0.1))


def query(api: Any, collection: str, text: str, **options: Any) -> dict[str, Any]:
    response = api.post(f"/v1/collections/{collection}/query", json={"query": text, **options})
    assert response.status_code == 200, response.text
    return dict(response.json())


def top_document(api: Any, collection: str, text: str, **options: Any) -> str | None:
    """The id of the document whose chunk a keyword search for `text` ranks first (whatever
    its score), or None when nothing matches."""
    found = query(api, collection, text, mode="keyword", k=1, min_score=-1, **options)
    return found["results"][0]["document_id"] if found["results"] else None
