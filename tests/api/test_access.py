"""Who may do what: the leak matrix over every endpoint, keys and their lifecycle,
workspaces, principals, and the audit trail.

Every endpoint is driven with no key, a revoked key, an expired key, a key of another
workspace, a key restricted to another collection and a key lacking the scope. Each gets 401
(with a Bearer challenge), 404 (a collection it may not see answers exactly as one that does
not exist) or 403, and no answer carries anything of the other side.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.app import create_app
from services.config import Settings
from services.db import Database
from tests.support.webhooks import drop_outside_webhooks

# Two workspaces, their keys and over a hundred requests: more than a few seconds.
pytestmark = pytest.mark.slow

CANARY = "canary-7f3a"  # only in workspace A's data: no refused answer may contain it
PUBLIC_URL = "https://93.184.216.34/hooks"  # a public address: no name to resolve
NO_DELIVERY = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    """Two workspaces and the keys the matrix drives the endpoints with."""

    a: str
    b: str
    collection: str  # in A
    other_collection: str  # in A
    document: str
    batch: str
    webhook: str
    keys: dict[str, str]
    key_ids: dict[str, str]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_key(client: TestClient, headers: dict[str, str], **body: Any) -> tuple[str, str]:
    response = client.post("/v1/keys", json={"name": f"k-{uuid.uuid4().hex[:6]}", **body},
                           headers=headers)  # fmt: skip
    assert response.status_code == 201, response.text
    created = response.json()
    return created["key"], created["id"]


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as anonymous:
        yield anonymous


@pytest.fixture(scope="module")
def world(client: TestClient, admin_headers: dict[str, str], db: Database) -> Iterator[World]:
    a, b = f"ws-a-{uuid.uuid4().hex[:6]}", f"ws-b-{uuid.uuid4().hex[:6]}"
    for name in (a, b):
        assert (
            client.post("/v1/workspaces", json={"name": name}, headers=admin_headers).status_code
            == 201
        )
    in_a = {**admin_headers, "X-Groundwire-Workspace": a}
    in_b = {**admin_headers, "X-Groundwire-Workspace": b}
    collection, other = f"{CANARY}-c", f"other-{uuid.uuid4().hex[:6]}"
    for name in (collection, other):
        created = client.post(
            "/v1/collections", json={"name": name, "embedder": "hash"}, headers=in_a
        )
        assert created.status_code == 201, created.text
    doc = f"{CANARY}-doc"
    accepted = client.post(
        f"/v1/collections/{collection}/documents",
        json={"documents": [{"id": doc, "title": CANARY, "text": f"{CANARY} tide tables"}]},
        headers=in_a,
    )
    assert accepted.status_code == 202, accepted.text
    uploaded = client.post(
        f"/v1/collections/{collection}/files",
        files={"file": (f"{doc}.txt", f"{CANARY} harbour log".encode())},
        data={"id": f"{doc}/file"},
        headers=in_a,
    )
    assert uploaded.status_code == 202, uploaded.text
    keys, ids = {}, {}
    for name, headers, body in (
        ("admin_a", in_a, {"scopes": ["admin"]}),
        ("reader", in_a, {"scopes": ["read"]}),
        ("revoked", in_a, {"scopes": ["admin"]}),
        ("expired", in_a, {"scopes": ["admin"]}),
        ("elsewhere", in_a, {"scopes": ["admin"], "collections": [other]}),
        ("other_workspace", in_b, {"scopes": ["admin"]}),
    ):
        keys[name], ids[name] = make_key(client, headers, **body)
    assert client.delete(f"/v1/keys/{ids['revoked']}", headers=in_a).status_code == 204
    with db.scope() as session:
        session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": ids["expired"]},
        )
    hook = client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "events": ["document.done"], "collections": [collection]},
        headers=in_a,
    )
    assert hook.status_code == 201, hook.text
    batch = accepted.json()["batch_id"]
    yield World(a, b, collection, other, doc, batch, hook.json()["id"], keys, ids)
    drop_outside_webhooks(db)


# (method, path, body, scope): every endpoint under /v1 and /metrics.
def endpoints(w: World) -> list[tuple[str, str, Any, str]]:
    c, d = w.collection, w.document
    return [
        ("GET", "/v1/collections", None, "read"),
        ("POST", "/v1/collections", {"name": "x-new", "embedder": "hash"}, "admin"),
        ("GET", f"/v1/collections/{c}", None, "read"),
        ("PATCH", f"/v1/collections/{c}", {"threshold": 0.5}, "admin"),
        ("PUT", f"/v1/collections/{c}/bulk-load", {"enabled": False}, "admin"),
        ("DELETE", f"/v1/collections/{c}", None, "admin"),
        ("POST", f"/v1/collections/{c}/documents", {"documents": [{"text": "x"}]}, "write"),
        ("GET", f"/v1/collections/{c}/documents", None, "read"),
        ("POST", f"/v1/collections/{c}/documents/retry", {}, "write"),
        ("GET", f"/v1/collections/{c}/documents/{d}", None, "read"),
        ("GET", f"/v1/collections/{c}/documents/{d}/chunks", None, "read"),
        ("GET", f"/v1/collections/{c}/batches", None, "read"),
        ("DELETE", f"/v1/collections/{c}/documents/{d}", None, "write"),
        ("POST", f"/v1/collections/{c}/documents/{d}/retry", None, "write"),
        ("POST", f"/v1/collections/{c}/files", None, "write"),
        ("GET", f"/v1/collections/{c}/documents/{d}/file/original", None, "read"),
        ("POST", f"/v1/collections/{c}/query", {"query": "tide"}, "read"),
        ("POST", f"/v1/collections/{c}/context", {"query": "tide"}, "read"),
        ("POST", f"/v1/collections/{c}/answer", {"query": "tide"}, "read"),
        ("GET", "/v1/models", None, "read"),
        ("GET", f"/v1/batches/{w.batch}", None, "read"),
        ("POST", "/v1/keys", {"name": "x", "scopes": ["read"]}, "admin"),
        ("GET", "/v1/keys", None, "admin"),
        ("DELETE", f"/v1/keys/{w.key_ids['reader']}", None, "admin"),
        ("POST", "/v1/webhooks", {"url": PUBLIC_URL, "events": ["batch.finished"]}, "admin"),
        ("GET", "/v1/webhooks", None, "admin"),
        ("GET", f"/v1/webhooks/{w.webhook}", None, "admin"),
        ("GET", f"/v1/webhooks/{w.webhook}/deliveries", None, "admin"),
        ("POST", f"/v1/webhooks/{w.webhook}/deliveries/{NO_DELIVERY}/retry", None, "admin"),
        ("DELETE", f"/v1/webhooks/{w.webhook}", None, "admin"),
        ("GET", "/v1/me", None, "read"),
        ("GET", "/v1/analytics/daily", None, "admin"),
        ("GET", "/v1/queues", None, "server"),
        ("POST", "/v1/workspaces", {"name": "x-ws"}, "server"),
        ("GET", "/v1/workspaces", None, "server"),
        ("GET", "/metrics", None, "server"),
    ]


def in_a_collection(path: str, w: World) -> bool:
    return (
        f"/{w.collection}" in path
        or path.startswith("/v1/batches/")
        or path.startswith(("/v1/keys/", "/v1/webhooks/"))
    )


def expected(caller: str, path: str, scope: str, w: World) -> set[int]:
    """The statuses a refused caller must get (a listing of one's own may answer 200)."""
    if caller in ("none", "revoked", "expired"):
        return {401}
    if scope == "server":
        return {403}
    if caller == "reader":
        return {403} if scope in ("write", "admin") else {200}
    if in_a_collection(path, w):
        return {404}
    if caller == "elsewhere" and path == "/v1/collections" and scope == "admin":
        return {403}  # its list does not include the new name
    return {200, 201}  # its own listings, its own new keys and collections


CALLERS = ["none", "revoked", "expired", "other_workspace", "elsewhere", "reader"]


def test_leak_matrix(client: TestClient, world: World) -> None:
    rows = []
    for caller in CALLERS:
        headers = {} if caller == "none" else bearer(world.keys[caller])
        for method, path, body, scope in endpoints(world):
            response = client.request(method, path, json=body, headers=headers)
            want = expected(caller, path, scope, world)
            rows.append((caller, method, path, response.status_code))
            assert response.status_code in want, (caller, method, path, response.text)
            if response.status_code >= 400:
                error = response.json()["error"]
                assert set(error) == {"code", "message"}
            if caller != "reader":  # nothing of a collection it may not see, beyond its request
                told = response.text.replace(world.collection, "").replace(world.document, "")
                assert CANARY not in told, (caller, path, response.text)
            if caller != "elsewhere" and caller != "reader":  # nor of a workspace not its own
                assert world.a not in response.text, (caller, path, response.text)
            if response.status_code == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
    assert len(rows) == len(CALLERS) * len(endpoints(world))
    statuses = {(caller, f"{m} {p}"): status for caller, m, p, status in rows}
    print("endpoint | " + " | ".join(CALLERS))
    for method, path, _, _ in endpoints(world):
        where = f"{method} {path}"
        shown = where.replace(world.collection, "{c}").replace(world.document, "{d}")
        shown = shown.replace(world.batch, "{batch}").replace(world.key_ids["reader"], "{key}")
        shown = shown.replace(world.webhook, "{webhook}")
        print(shown + " | " + " | ".join(str(statuses[(c, where)]) for c in CALLERS))


def test_a_hidden_collection_answers_as_a_missing_one(client: TestClient, world: World) -> None:
    missing = f"{CANARY}-never-made"
    for caller in ("other_workspace", "elsewhere"):
        headers = bearer(world.keys[caller])
        for suffix, method, body in (("", "GET", None), ("/query", "POST", {"query": "tide"})):
            hidden = client.request(
                method, f"/v1/collections/{world.collection}{suffix}", json=body, headers=headers
            )
            absent = client.request(
                method, f"/v1/collections/{missing}{suffix}", json=body, headers=headers
            )
            assert hidden.status_code == absent.status_code == 404
            assert hidden.json() == {
                "error": {
                    "code": absent.json()["error"]["code"],
                    "message": absent.json()["error"]["message"].replace(missing, world.collection),
                }
            }


def test_open_endpoints_say_nothing_of_data(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/collections").status_code == 401


def test_the_api_description_needs_nothing_from_the_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "http://" not in page.text and "https://" not in page.text, "no CDN"
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200


def test_keys_are_shown_once_and_stored_as_a_digest(
    client: TestClient, world: World, db: Database
) -> None:
    headers = bearer(world.keys["admin_a"])
    secret, key_id = make_key(client, headers, scopes=["read"])
    assert secret.startswith("gw_") and len(secret) > 40
    listed = client.get("/v1/keys", headers=headers)
    assert secret not in listed.text and secret[:11] in listed.text
    with db.scope() as session:
        row = session.execute(
            text("SELECT secret_sha256, prefix FROM api_keys WHERE id = :id"), {"id": key_id}
        ).one()
    assert bytes(row[0]) != secret.encode() and len(bytes(row[0])) == 32
    assert client.get("/v1/collections", headers=bearer(secret)).status_code == 200
    used = next(k for k in client.get("/v1/keys", headers=headers).json()["keys"]
                if k["id"] == key_id)  # fmt: skip
    assert used["last_used_at"] is not None
    assert client.delete(f"/v1/keys/{key_id}", headers=headers).status_code == 204
    assert client.get("/v1/collections", headers=bearer(secret)).status_code == 401


def test_a_key_cannot_mint_a_wider_one(client: TestClient, world: World) -> None:
    limited = bearer(world.keys["elsewhere"])
    wider = client.post(
        "/v1/keys", json={"name": "x", "scopes": ["read"], "collections": [world.collection]},
        headers=limited,
    )  # fmt: skip
    assert wider.status_code == 403
    own = client.post("/v1/keys", json={"name": "y", "scopes": ["read"]}, headers=limited)
    assert own.status_code == 201 and own.json()["collections"] == [world.other_collection]
    reader = bearer(world.keys["reader"])
    assert client.post("/v1/keys", json={"name": "z", "scopes": ["read"]}, headers=reader
                          ).status_code == 403  # fmt: skip


def test_names_are_per_workspace(client: TestClient, world: World, admin_headers: Any) -> None:
    in_b = {**admin_headers, "X-Groundwire-Workspace": world.b}
    same = client.post("/v1/collections", json={"name": world.collection, "embedder": "hash"},
                          headers=in_b)  # fmt: skip
    assert same.status_code == 201, same.text
    assert client.get(f"/v1/collections/{world.collection}", headers=in_b).json()["documents"] == {
        "queued": 0, "processing": 0, "done": 0, "failed": 0,
    }  # fmt: skip
    unknown = {**admin_headers, "X-Groundwire-Workspace": "no-such-workspace"}
    assert client.get("/v1/collections", headers=unknown).status_code == 404


def test_state_changes_are_audited(client: TestClient, world: World, db: Database) -> None:
    headers = bearer(world.keys["admin_a"])
    name = f"audited-{uuid.uuid4().hex[:6]}"
    assert client.post("/v1/collections", json={"name": name, "embedder": "hash"},
                          headers=headers).status_code == 201  # fmt: skip
    docs = {"documents": [{"id": "one", "text": "first"}, {"id": "two", "text": "second"}]}
    assert client.post(f"/v1/collections/{name}/documents", json=docs,
                          headers=headers).status_code == 202  # fmt: skip
    assert client.delete(f"/v1/collections/{name}/documents/nope", headers=headers
                            ).status_code == 404  # fmt: skip
    client.post(f"/v1/collections/{name}/query", json={"query": "first"}, headers=headers)
    with db.scope() as session:
        rows = session.execute(
            text(
                "SELECT key_id::text, key_name, action, collection, document_ids, status, outcome"
                " FROM audit_log WHERE collection = :c OR path = '/v1/collections'"
                " AND key_id = :k ORDER BY id"
            ),
            {"c": name, "k": world.key_ids["admin_a"]},
        ).all()
    actions = [(r[2], r[3], r[4], r[5], r[6]) for r in rows if r[0] == world.key_ids["admin_a"]]
    assert ("POST /v1/collections", None, None, 201, "ok") in actions
    assert ("POST /v1/collections/{name}/documents", name, ["one", "two"], 202, "ok") in actions
    assert (
        "DELETE /v1/collections/{name}/documents/{document_id}",
        name,
        ["nope"],
        404,
        "refused",
    ) in actions
    assert not any("query" in a[0] for a in actions), "reads are not state changes"
