"""Every client mistake gets a precise 4xx in the one error shape, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api.limits import BodySizeLimit
from services.app import create_app
from services.config import Settings


def error_of(response: Any, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return dict(body["error"])


def post_docs(api: Any, name: str, documents: Any) -> Any:
    """Posts JSON with non-ASCII escaped, as a client may send lone surrogates (\\ud800)."""
    body = json.dumps({"documents": documents}).encode("ascii")
    return api.post(
        f"/v1/collections/{name}/documents",
        content=body,
        headers={"content-type": "application/json"},
    )


def test_unknown_collection_is_404(api: Any) -> None:
    error = error_of(post_docs(api, "no-such-collection", [{"text": "hello"}]), 404)
    assert error["code"] == "collection_not_found"
    error_of(api.get("/v1/collections/no-such-collection"), 404)
    error_of(api.post("/v1/collections/no-such-collection/query", json={"query": "x"}), 404)


def test_empty_text_is_rejected(api: Any, make_collection: Any) -> None:
    name = make_collection()
    assert error_of(post_docs(api, name, [{"text": "   \n "}]), 422)["code"] == "empty_document"
    error_of(post_docs(api, name, []), 422)


def test_too_many_documents(api: Any, make_collection: Any) -> None:
    name = make_collection()
    error = error_of(post_docs(api, name, [{"text": f"doc {i}"} for i in range(1001)]), 422)
    assert "1000" in error["message"]


def test_text_over_size_limit(api: Any, make_collection: Any, settings: Settings) -> None:
    name = make_collection()
    big = "a" * (settings.max_document_bytes + 1)
    error = error_of(post_docs(api, name, [{"id": "big", "text": big}]), 413)
    assert error["code"] == "document_too_large" and "big" in error["message"]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"text": "nul \u0000 byte"}, "invalid_text"),
        ({"text": "lone \ud800 surrogate"}, "invalid_text"),
        ({"text": "ok", "title": "bad \u0000"}, "invalid_text"),
        ({"text": "ok", "metadata": {"k": "v\u0000"}}, "invalid_metadata"),
        ({"text": "ok", "metadata": {"k\ud800": 1}}, "invalid_metadata"),
    ],
)
def test_unstorable_text_is_rejected(
    api: Any, make_collection: Any, document: Any, code: str
) -> None:
    name = make_collection()
    assert error_of(post_docs(api, name, [document]), 422)["code"] == code
    assert api.get(f"/v1/collections/{name}").json()["documents"] == {
        "queued": 0,
        "processing": 0,
        "done": 0,
        "failed": 0,
    }


def test_a_bad_document_rejects_the_whole_batch(api: Any, make_collection: Any) -> None:
    name = make_collection()
    response = post_docs(
        api, name, [{"id": "good", "text": "fine"}, {"id": "bad", "text": "x\u0000"}]
    )
    assert "documents[1]" in error_of(response, 422)["message"]
    error_of(api.get(f"/v1/collections/{name}/documents/good"), 404)


def test_invalid_json_and_invalid_utf8(api: Any, make_collection: Any) -> None:
    name = make_collection()
    url = f"/v1/collections/{name}/documents"
    headers = {"content-type": "application/json"}
    assert (
        error_of(api.post(url, content=b'{"documents": [', headers=headers), 400)["code"]
        == "invalid_json"
    )
    error_of(api.post(url, content=b'{"documents": [{"text": "\xff\xfe"}]}', headers=headers), 400)


def test_wrong_shapes_are_422(api: Any, make_collection: Any) -> None:
    name = make_collection()
    error_of(post_docs(api, name, [{"text": "ok", "colour": "red"}]), 422)
    error_of(post_docs(api, name, [{"text": "ok", "metadata": ["not", "an", "object"]}]), 422)
    error_of(post_docs(api, name, [{"text": 42}]), 422)
    assert (
        error_of(post_docs(api, name, [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]), 422)[
            "code"
        ]
        == "duplicate_id"
    )
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"d": deep}
    assert (
        error_of(post_docs(api, name, [{"text": "ok", "metadata": deep}]), 422)["code"]
        == "invalid_metadata"
    )


def test_query_validation(api: Any, make_collection: Any) -> None:
    name = make_collection()
    url = f"/v1/collections/{name}/query"
    error_of(api.post(url, json={"query": ""}), 422)
    error_of(api.post(url, json={"query": "x", "k": 0}), 422)
    error_of(api.post(url, json={"query": "x", "k": 101}), 422)
    error_of(api.post(url, json={"query": "x", "min_score": -1.5}), 422)
    assert error_of(api.post(url, json={"query": "   "}), 422)["code"] == "empty_query"


def test_collection_validation(api: Any, make_collection: Any) -> None:
    error_of(api.post("/v1/collections", json={"name": "bad name!"}), 422)
    assert (
        error_of(api.post("/v1/collections", json={"name": "x1", "embedder": "nope"}), 422)["code"]
        == "unknown_embedder"
    )
    error_of(
        api.post("/v1/collections", json={"name": "x2", "embedder": "local", "chunk_tokens": 1000}),
        422,
    )
    error_of(
        api.post("/v1/collections", json={"name": "x3", "chunk_tokens": 64, "chunk_overlap": 64}),
        422,
    )
    name = make_collection()
    assert error_of(api.post("/v1/collections", json={"name": name}), 409)["code"] == "conflict"


def test_unknown_batch_and_route(api: Any) -> None:
    error_of(api.get("/v1/batches/00000000-0000-0000-0000-000000000000"), 404)
    error_of(api.get("/v1/batches/not-a-uuid"), 422)
    error_of(api.get("/v1/nothing-here"), 404)


def test_body_limit_is_enforced_before_reading(
    settings: Settings, admin_headers: dict[str, str]
) -> None:
    small = TestClient(BodySizeLimit(create_app(settings), limit=1024), headers=admin_headers)
    error = error_of(small.post("/v1/collections", content=b"x" * 2048), 413)
    assert error["code"] == "payload_too_large"

    def chunks() -> Any:
        for _ in range(10):
            yield b"y" * 512

    error_of(small.post("/v1/collections", content=chunks()), 413)


def test_pathological_json_and_metadata_are_4xx(api: Any, make_collection: Any) -> None:
    name = make_collection()
    url = f"/v1/collections/{name}/documents"
    headers = {"content-type": "application/json"}
    # Nesting far past what a recursive parser handles: rejected, never a 500.
    deep = b'{"documents": [{"text": "ok", "metadata": {"a": ' + b"[" * 100_000 + b"]" * 100_000
    deep += b"}}]}"
    assert api.post(url, content=deep, headers=headers).status_code in (400, 422)
    huge = {"blob": "x" * (64 * 1024 + 1)}
    assert error_of(post_docs(api, name, [{"text": "ok", "metadata": huge}]), 413)["code"] == (
        "metadata_too_large"
    )
    assert error_of(post_docs(api, name, [{"text": "\ud800 lone"}]), 422)["code"] == "invalid_text"
    listed = api.get(f"/v1/collections/{name}").json()
    assert sum(listed["documents"].values()) == 0, "nothing half-written remains"


def test_a_method_not_allowed_says_which_are(anonymous: Any) -> None:
    response = anonymous.delete("/healthz")
    assert response.status_code == 405 and response.headers["allow"] == "GET"
    assert response.json()["error"]["code"]


def test_a_body_that_is_not_json_is_415(api: Any, make_collection: Any) -> None:
    name = make_collection()
    response = api.post(
        f"/v1/collections/{name}/documents",
        content=b"documents=hello",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert error_of(response, 415)["code"] == "unsupported_media_type"
    assert api.get(f"/v1/collections/{name}").json()["documents"]["queued"] == 0


def test_the_ingest_body_is_described(api: Any) -> None:
    """The route parses its body itself (services/api/json_body.py); the description still
    names the model, and the model's own schema is among the components."""
    spec = api.get("/openapi.json").json()
    body = spec["paths"]["/v1/collections/{name}/documents"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]["$ref"]
    assert reference == "#/components/schemas/IngestRequest"
    schemas = spec["components"]["schemas"]
    assert schemas["IngestRequest"]["required"] == ["documents"]
    assert "text" in schemas["DocumentIn"]["properties"]
