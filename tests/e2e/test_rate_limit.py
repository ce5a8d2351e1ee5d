"""A key's rate limit holds across API processes: two uvicorn processes share one window in
Redis, so a key limited to 60 queries a minute gets 60 through in a minute, and 429s with a
Retry-After for the rest."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import admin_headers, start_api
from tests.support.processes import stop

pytestmark = pytest.mark.slow  # two API processes, and a minute of requests


def test_sixty_queries_a_minute_across_two_api_processes(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    apis = [start_api(service_env, tmp_path / f"api-{i}.log") for i in range(2)]
    try:
        first = apis[0][1]
        name = f"limited-{uuid.uuid4().hex[:6]}"
        with httpx.Client(base_url=first, headers=admin_headers(service_env)) as admin:
            made = admin.post("/v1/collections", json={"name": name, "embedder": "hash"})
            assert made.status_code == 201, made.text
            created = admin.post(
                "/v1/keys", json={"name": "limited", "scopes": ["read"], "query_per_minute": 60}
            )
            assert created.status_code == 201, created.text
        headers = {"Authorization": f"Bearer {created.json()['key']}"}
        clients = [httpx.Client(base_url=url, headers=headers, timeout=10) for _, url in apis]
        passed, limited, retry_after = 0, 0, set()
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 60:
            client = clients[sent % 2]
            response = client.post(f"/v1/collections/{name}/query", json={"query": "tide"})
            sent += 1
            if response.status_code == 200:
                passed += 1
            else:
                assert response.status_code == 429, response.text
                assert response.json()["error"]["code"] == "rate_limited"
                retry_after.add(int(response.headers["retry-after"]))
                limited += 1
            time.sleep(0.05)
        for client in clients:
            client.close()
    finally:
        for process, _ in apis:
            stop(process)
    assert 55 <= passed <= 65, (passed, limited, sent)
    assert limited > 0 and all(1 <= s <= 60 for s in retry_after), retry_after
    print(f"rate limit: {passed} of {sent} queries through in 60 s, {limited} answered 429")
