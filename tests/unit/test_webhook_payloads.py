"""Webhook bodies, signatures and the retry schedule (pure functions)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.webhooks import payloads


def test_a_signed_event_verifies_with_the_standard_library_and_only_unaltered() -> None:
    secret = payloads.new_secret()
    occurred = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    body = payloads.body("document.done", occurred, {"id": "a", "version": 2})
    assert json.loads(body) == {
        "type": "document.done",
        "timestamp": "2026-12-04T09:30:00Z",
        "data": {"id": "a", "version": 2},
    }
    assert body == payloads.body("document.done", occurred, {"version": 2, "id": "a"})
    now = datetime.now(UTC)
    headers = payloads.headers(secret, "msg-1", body, now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["id"] == "a"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b'"a"', b'"b"'), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(payloads.new_secret()).verify(body, headers)
    stale = payloads.headers(secret, "msg-1", body, now - timedelta(hours=1))
    with pytest.raises(WebhookVerificationError):  # replayed an hour later
        Webhook(secret).verify(body, stale)


def test_backoff_doubles_to_its_cap_with_a_little_spread() -> None:
    rng = random.Random(1)
    delays = [payloads.backoff_s(n, 5, 3600, rng) for n in range(1, 14)]
    for n, delay in enumerate(delays, start=1):
        nominal = min(3600, 5 * 2 ** (n - 1))
        assert nominal * 0.9 <= delay <= min(3600, nominal * 1.1)
    assert delays[-1] <= 3600
    # 24 hours of retries at the defaults: about thirty attempts, not thousands
    total, attempts = 0.0, 0
    while total < 24 * 3600:
        attempts += 1
        total += payloads.backoff_s(attempts, 5, 3600, rng)
    assert 25 <= attempts <= 40
