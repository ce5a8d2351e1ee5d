"""Errors that say what is wrong, to the right party: a provider that is not configured is a
422 at creation (not a 5xx on every query); a slow provider holds up only its own collection;
a provider's error text never reaches callers; markup without text fails as such."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from tests.support.api import ingest, query, wait_finished, wait_status
from tests.support.environment import settings_from

SECRETISH = "Incorrect API key provided: sk-proj-Ab12***************************wXyZ"


def test_an_openai_collection_without_a_provider_is_refused_at_creation(
    service_env: dict[str, str], admin_headers: dict[str, str]
) -> None:
    env = {k: v for k, v in service_env.items() if not k.startswith("OPENAI_")}
    with TestClient(create_app(settings_from(env)), headers=admin_headers) as api:
        refused = api.post(
            "/v1/collections",
            json={"name": "no-provider", "embedder": "openai:text-embedding-3-small"},
        )
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "provider_not_configured" and "OPENAI_API_KEY" in error["message"]
        assert api.get("/v1/collections/no-provider").status_code == 404


@pytest.mark.slow  # waits on a 3 s provider
def test_a_slow_provider_probe_holds_up_no_other_collection(
    api: Any, fake_openai: Any, make_collection: Any
) -> None:
    name = make_collection("hash")
    fake_openai.reset(dimensions=24, latency_s=3.0)
    created: dict[str, Any] = {}

    def create() -> None:  # an unknown model: its dimensions are asked of the provider
        created["response"] = api.post(
            "/v1/collections", json={"name": "slow-probe", "embedder": "openai:probe-me-slowly"}
        )

    creating = threading.Thread(target=create)
    creating.start()
    try:
        time.sleep(0.5)  # the probe is in flight
        started = time.monotonic()
        query(api, name, "anything at all")
        waited = time.monotonic() - started
    finally:
        creating.join()
        fake_openai.reset(dimensions=24)
    assert created["response"].status_code == 201, created["response"].text
    assert waited < 2.0, f"the query waited {waited:.1f} s on another collection's probe"
    api.delete("/v1/collections/slow-probe")


def test_provider_error_text_never_reaches_callers(
    api: Any, fake_openai: Any, make_collection: Any, worker: Any
) -> None:
    fake_openai.reset(dimensions=32)
    name = make_collection("openai:honest-errors-model")
    fake_openai.reset(dimensions=32, reject_marker="POISON", reject_message=SECRETISH)
    try:
        batch = ingest(api, name, [{"id": "bad", "text": "POISON in the input"}])
        wait_finished(api, batch["batch_id"], allow_failed=True)
        bad = wait_status(api, name, "bad", "failed")
        assert bad["error_class"] == "embedding"
        assert "HTTP 400 (invalid_input)" in bad["error"], bad["error"]
        assert "sk-proj" not in bad["error"] and "Incorrect API key" not in bad["error"]
        answer = api.post(f"/v1/collections/{name}/query", json={"query": "POISON question"})
        assert answer.status_code == 502
        assert "sk-proj" not in answer.text and "Incorrect API key" not in answer.text
    finally:
        fake_openai.reset(dimensions=32)


def test_markup_without_visible_text_fails_as_no_text(
    api: Any, make_collection: Any, worker: Any
) -> None:
    name = make_collection("hash")
    empty = "<html><head><title>T</title><script>var x = 1;</script></head><body> </body></html>"
    batch = ingest(api, name, [{"id": "blank", "text": empty, "content_type": "text/html"}])
    wait_finished(api, batch["batch_id"], allow_failed=True)
    blank = wait_status(api, name, "blank", "failed")
    assert blank["error_class"] == "parse" and "no text" in blank["error"], blank
