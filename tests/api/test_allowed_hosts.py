"""The API answers only Host names it was told of: a page that rebinds its own domain to
127.0.0.1 gets a 421 with the error JSON, health checks included."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.api.hosts import AllowedHosts, HostPolicy
from services.app import create_app
from services.config import Settings


def test_loopback_and_the_servers_own_address_answer(api: Any) -> None:
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST."):
        assert api.get("/healthz", headers={"Host": host}).status_code == 200, host
    # TestClient's requests reach the server at "testserver": that address is answered.
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/v1/collections"])
def test_a_rebound_name_gets_421(api: Any, path: str) -> None:
    response = api.get(path, headers={"Host": "attacker.example:8000"})
    assert response.status_code == 421, response.text
    assert response.json()["error"]["code"] == "host_not_allowed"
    assert response.headers["connection"] == "close"


def test_configured_names_and_star(settings: Settings, admin_headers: dict[str, str]) -> None:
    configured = settings.model_copy(update={"allowed_hosts": " api , .example.org,proxy:8443"})
    with TestClient(create_app(configured), headers=admin_headers) as client:
        for host in ("api:8000", "example.org", "a.b.example.org:443", "proxy:8443"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
        for host in ("badexample.org", "proxy:8444", "apis"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 421, host
    anything = settings.model_copy(update={"allowed_hosts": "*"})
    with TestClient(create_app(anything)) as client:
        assert client.get("/healthz", headers={"Host": "anything.example"}).status_code == 200


def test_bound_host_and_malformed_values() -> None:
    bound = HostPolicy.from_setting("", bound_host="10.1.2.3")
    assert bound.allows("10.1.2.3:8000") and not bound.allows("10.1.2.4")
    everywhere = HostPolicy.from_setting("", bound_host="0.0.0.0")
    assert not everywhere.allows("0.0.0.0") and everywhere.allows("localhost:1")
    assert HostPolicy.from_setting("", bound_host="::").allows("[::1]")
    assert HostPolicy.from_setting("[fe80::1], ::2").allows("[fe80::1]:80")
    assert HostPolicy.from_setting("::2").allows("[::2]")
    # The address a connection reached is answered (an IP literal: no page can rebind it).
    assert HostPolicy.from_setting("").allows("172.18.0.5:8000", server_host="172.18.0.5")
    for malformed in ("[::1", "[::1]x", "localhost:abc", "localhost:", "", "[]"):
        assert not HostPolicy.from_setting("").allows(malformed), malformed


def test_two_host_headers_are_refused() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/healthz",
        "headers": [(b"host", b"localhost"), (b"host", b"attacker.example")],
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(AllowedHosts(app)(scope, receive, send))
    assert sent[0]["status"] == 400
