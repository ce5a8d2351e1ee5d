"""The collections API: create, list, show with counts, delete."""

from __future__ import annotations

from typing import Any

from services.config import Settings


def test_create_list_show_delete(api: Any, settings: Settings) -> None:
    created = api.post("/v1/collections", json={"name": "api-coll-1", "embedder": "hash"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["embedder"] == "hash" and body["dimensions"] == 256
    assert 0 <= body["chunk_overlap"] < body["chunk_tokens"]

    default = api.post("/v1/collections", json={"name": "api-coll-2"}).json()
    assert default["embedder"] == "local" and default["dimensions"] == 384
    assert default["chunk_tokens"] <= 254

    names = {c["name"] for c in api.get("/v1/collections").json()["collections"]}
    assert {"api-coll-1", "api-coll-2"} <= names

    detail = api.get("/v1/collections/api-coll-1").json()
    assert detail["documents"] == {"queued": 0, "processing": 0, "done": 0, "failed": 0}
    assert detail["chunks"] == 0
    assert detail["limits"] == {  # what a 413 on this collection's documents hit
        "max_document_bytes": settings.max_document_bytes,
        "max_body_bytes": settings.max_body_bytes,
        "max_metadata_bytes": settings.max_metadata_bytes,
        "max_documents_per_request": 1000,
    }

    for name in ("api-coll-1", "api-coll-2"):
        assert api.delete(f"/v1/collections/{name}").status_code == 204
        assert api.get(f"/v1/collections/{name}").status_code == 404


def test_health_and_docs(api: Any) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    assert api.get("/docs").status_code == 200
    assert "/v1/collections/{name}/query" in api.get("/openapi.json").json()["paths"]


def test_openai_collection_probes_dimensions(api: Any, fake_openai: Any) -> None:
    fake_openai.reset(dimensions=48)
    created = api.post(
        "/v1/collections", json={"name": "api-openai", "embedder": "openai:probe-model"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["dimensions"] == 48
    api.delete("/v1/collections/api-openai")
