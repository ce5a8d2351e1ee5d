"""The provider budget is shared through Redis by every process that uses it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest
import redis

from services.config import Settings
from services.embedding.budget import BudgetTimeout, ProviderBudget
from services.embedding.openai_provider import OpenAIEmbedder


def budgets(url: str, **limits: Any) -> tuple[ProviderBudget, ProviderBudget]:
    """Two budgets on separate connections, as two worker processes would hold them."""
    key = uuid.uuid4().hex
    return (
        ProviderBudget(redis.Redis.from_url(url), key, **limits),
        ProviderBudget(redis.Redis.from_url(url), key, **limits),
    )


def test_what_one_worker_spends_another_cannot(redis_url: str) -> None:
    first, second = budgets(redis_url, requests_per_minute=1000, tokens_per_minute=6000)
    assert first.try_acquire(5000) == 0
    wait = second.try_acquire(5000)
    # 4,000 tokens short at 100 tokens/s: about 40 s.
    assert 35 <= wait <= 41
    assert second.try_acquire(900) == 0


def test_requests_per_minute_bound(redis_url: str) -> None:
    first, second = budgets(redis_url, requests_per_minute=3, tokens_per_minute=10**9)
    assert [first.try_acquire(1), second.try_acquire(1), first.try_acquire(1)] == [0, 0, 0]
    assert 15 <= second.try_acquire(1) <= 21  # one request refills every 20 s


def test_a_429_pauses_every_worker(redis_url: str) -> None:
    first, second = budgets(redis_url, requests_per_minute=1000, tokens_per_minute=10**6)
    first.pause(1.0)
    # The budget alone would let this through at once: any wait is the pause, seen by the
    # second worker (a loaded machine may take a while between the calls).
    assert 0 < second.try_acquire(1) <= 1.0
    started = time.monotonic()
    assert second.acquire(1) > 0
    assert time.monotonic() - started >= 0.3


def test_provider_headers_only_lower_the_budget(redis_url: str) -> None:
    # 10 tokens/s of refill: the 450 tokens the last two asks lack take 45 s to come back, so
    # no delay between the calls (a loaded machine) can fill them in (at 1,000 tokens/s it
    # could, and did).
    first, second = budgets(redis_url, requests_per_minute=1000, tokens_per_minute=600)
    first.observe({"x-ratelimit-remaining-tokens": "100", "x-ratelimit-remaining-requests": "x"})
    assert second.try_acquire(50) == 0
    assert second.try_acquire(500) > 0
    first.observe({"x-ratelimit-remaining-tokens": "1000000"})
    assert second.try_acquire(500) > 0, "a provider's higher figure never raises our budget"


def test_waiting_is_bounded(redis_url: str) -> None:
    (only, _) = budgets(redis_url, requests_per_minute=1, tokens_per_minute=10**6)
    only.try_acquire(1)
    with pytest.raises(BudgetTimeout):
        only.acquire(1, timeout=0.2)


def test_embedder_turns_429_into_waiting(fake_openai: Any, redis_url: str) -> None:
    settings = Settings(
        openai_base_url=fake_openai.base_url,
        openai_api_key="test-key",
        openai_requests_per_minute=100_000,
        openai_tokens_per_minute=10_000_000,
        openai_max_retries=3,
        redis_url=redis_url,
    )
    fake_openai.reset(dimensions=16)
    model = f"budget-{uuid.uuid4().hex[:6]}"
    worker_a = OpenAIEmbedder(model, settings)
    worker_b = OpenAIEmbedder(model, settings)
    fake_openai.reset(dimensions=16, rate_limit_next=1, retry_after_s=0.5)
    started = time.monotonic()
    (vector,) = worker_a.embed(["first"])
    assert time.monotonic() - started >= 0.5
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    worker_b.embed(["second"])
    assert [r.status for r in fake_openai.requests] == [429, 200, 200]
