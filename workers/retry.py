"""Retry delays: exponential backoff with full jitter, at least the provider's Retry-After."""

from __future__ import annotations

import random


def retry_delay(
    retries: int,
    *,
    base_s: float = 2.0,
    cap_s: float = 600.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Returns seconds to wait before retry number `retries + 1`, never above `cap_s`."""
    ceiling = min(cap_s, base_s * (2**retries))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap_s)
