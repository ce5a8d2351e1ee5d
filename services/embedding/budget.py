"""One provider rate budget shared by every worker, kept in Redis.

Two token buckets per provider key (requests per minute, tokens per minute) are refilled and
debited atomically by a Lua script, so any number of worker processes together stay under the
provider's limits instead of each discovering them through 429s. The buckets also learn: the
provider's `x-ratelimit-remaining-*` headers can only lower them, and a 429's Retry-After
pauses every worker until it has passed. Time is Redis's own clock, the same for every host.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

import redis

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local want_requests, want_tokens = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return math.ceil((paused - now) * 1000) end
local function level(key, capacity)
  local state = redis.call('HMGET', key, 'level', 'at')
  local value, at = tonumber(state[1]), tonumber(state[2])
  if value == nil then return capacity end
  return math.min(capacity, value + (now - at) * capacity / 60)
end
local requests, tokens = level(KEYS[1], rpm), level(KEYS[2], tpm)
want_tokens = math.min(want_tokens, tpm)
if requests >= want_requests and tokens >= want_tokens then
  redis.call('HSET', KEYS[1], 'level', requests - want_requests, 'at', now)
  redis.call('HSET', KEYS[2], 'level', tokens - want_tokens, 'at', now)
  redis.call('EXPIRE', KEYS[1], 120)
  redis.call('EXPIRE', KEYS[2], 120)
  return 0
end
local wait = math.max((want_requests - requests) * 60 / rpm, (want_tokens - tokens) * 60 / tpm)
return math.ceil(wait * 1000)
"""

_PAUSE = """
local t = redis.call('TIME')
local until_at = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_at > current then redis.call('SET', KEYS[1], until_at, 'EX', 3600) end
return 0
"""

_LOWER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i, key in ipairs(KEYS) do
  local observed = tonumber(ARGV[i])
  if observed ~= nil and observed >= 0 then
    local state = redis.call('HMGET', key, 'level')
    local value = tonumber(state[1])
    if value == nil or observed < value then
      redis.call('HSET', key, 'level', observed, 'at', now)
      redis.call('EXPIRE', key, 120)
    end
  end
end
return 0
"""


class BudgetTimeout(Exception):
    """Waiting for the shared budget took longer than allowed."""


class ProviderBudget:
    """Requests- and tokens-per-minute buckets for one provider, shared through Redis."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        *,
        requests_per_minute: int,
        tokens_per_minute: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.keys = [f"groundwire:budget:{key}:{part}" for part in ("requests", "tokens", "pause")]
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)
        self._lower = client.register_script(_LOWER)

    def try_acquire(self, tokens: int) -> float:
        """Debits one request and `tokens`; returns 0, or the seconds to wait before retrying."""
        wait_ms = self._acquire(keys=self.keys, args=[1, tokens, self.rpm, self.tpm])
        return int(wait_ms) / 1000

    def acquire(self, tokens: int, timeout: float = 300.0) -> float:
        """Blocks until the budget allows one request of `tokens`; returns seconds waited."""
        waited = 0.0
        while True:
            wait = self.try_acquire(tokens)
            if wait <= 0:
                return waited
            if waited + wait > timeout:
                raise BudgetTimeout(f"provider budget still exhausted after {waited:.0f}s")
            pause = wait * random.uniform(1.0, 1.2)  # spread workers woken together
            self.sleep(pause)
            waited += pause

    def pause(self, seconds: float) -> None:
        """Makes every worker wait `seconds` (a 429's Retry-After) before its next request."""
        self._pause(keys=[self.keys[2]], args=[seconds])

    def observe(self, headers: Mapping[str, str]) -> None:
        """Lowers the buckets to what the provider says remains (never raises them)."""
        requests = headers.get("x-ratelimit-remaining-requests")
        tokens = headers.get("x-ratelimit-remaining-tokens")
        if requests is None and tokens is None:
            return
        self._lower(keys=self.keys[:2], args=[_number(requests), _number(tokens)])


def _number(value: str | None) -> float:
    try:
        return float(value) if value is not None else -1.0
    except ValueError:
        return -1.0
