"""The webhooks API as a client meets it: what it refuses and why, secrets shown once,
listings without them, and each workspace's webhooks its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from services.db import Database
from tests.support.webhooks import drop_outside_webhooks

PUBLIC = "https://93.184.216.34/hooks"  # a public address literal: nothing to resolve


@pytest.fixture(autouse=True)
def _forget_webhooks(db: Database) -> Iterator[None]:
    yield
    drop_outside_webhooks(db)  # no later delivery tick may send anything there


def make(api: Any, **body: Any) -> Any:
    return api.post("/v1/webhooks", json={"url": PUBLIC, "events": ["document.done"], **body})


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8080/hooks", "webhook_url_private"),
        ("http://localhost/hooks", "webhook_url_private"),
        ("http://[::1]/hooks", "webhook_url_private"),
        ("http://10.1.2.3/hooks", "webhook_url_private"),
        ("http://192.168.0.9/hooks", "webhook_url_private"),
        ("http://169.254.169.254/latest/meta-data", "webhook_url_private"),
        ("http://[::ffff:127.0.0.1]/hooks", "webhook_url_private"),
        ("http://[64:ff9b::7f00:1]/hooks", "webhook_url_private"),
        ("http://[2002:a00:1::]/hooks", "webhook_url_private"),
        ("ftp://93.184.216.34/hooks", "invalid_webhook_url"),
        ("https://user:pw@93.184.216.34/hooks", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
        ("http://93.184.216.34:0/hooks", "invalid_webhook_url"),
        ("http://no-such-host.invalid/hooks", "webhook_url_unresolvable"),
    ],
)
def test_receivers_that_may_not_be_reached_are_refused(api: Any, url: str, code: str) -> None:
    refused = make(api, url=url)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == code


@pytest.mark.parametrize(
    "body",
    [
        {"events": []},
        {"events": ["document.created"]},
        {"collections": []},
        {"collections": ["Not A Name!"]},
        {"secret": "mine"},
    ],
)
def test_malformed_webhooks_get_422(api: Any, body: dict[str, Any]) -> None:
    refused = make(api, **body)
    assert refused.status_code == 422, refused.text


def test_a_webhook_is_made_listed_and_deleted(api: Any, make_collection: Any) -> None:
    name = make_collection()
    made = make(api, events=["batch.finished", "document.done"], collections=[name])
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 40
    assert hook["events"] == ["batch.finished", "document.done"]
    assert hook["collections"] == [name]
    listed = api.get("/v1/webhooks").json()["webhooks"]
    assert [w for w in listed if w["id"] == hook["id"]] == [
        {k: v for k, v in hook.items() if k != "secret"}
    ]
    assert hook["secret"] not in api.get("/v1/webhooks").text
    one = api.get(f"/v1/webhooks/{hook['id']}")
    assert one.status_code == 200 and "secret" not in one.json()
    log = api.get(f"/v1/webhooks/{hook['id']}/deliveries")
    assert log.status_code == 200 and log.json() == {"deliveries": [], "next_before": None}
    assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?limit=0").status_code == 422
    assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    for path in (f"/v1/webhooks/{hook['id']}", f"/v1/webhooks/{hook['id']}/deliveries"):
        gone = api.get(path)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "webhook_not_found"
    assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 404
    assert api.get(f"/v1/webhooks/{uuid.uuid4()}").status_code == 404
    assert api.get("/v1/webhooks/not-an-id").status_code == 422


def test_a_collection_that_does_not_exist_is_named(api: Any) -> None:
    refused = make(api, collections=["no-such-collection"])
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "collection_not_found"
