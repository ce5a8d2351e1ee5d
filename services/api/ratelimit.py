"""Requests per minute per key, shared by every API process through Redis.

A sliding window: each key and kind (query, ingest) keeps the times of its requests of the
last minute in a sorted set; a request is let through while fewer than the limit are there,
so no minute, wherever it starts, holds more than the limit. Answered with 429 and the
seconds until the oldest request leaves the window. The server admin key is not limited. If
Redis cannot be reached, requests go through (and a warning is logged): the limit protects
the service, it is not what keeps data apart.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from typing import Annotated, Literal

import redis
from fastapi import Depends, Request

from services.access.caller import Caller
from services.api.deps import CallerDep, RuntimeDep
from services.api.errors import ApiError

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

Kind = Literal["query", "ingest"]


class RateLimiter:
    """The shared windows, in the broker's Redis."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._sha: str | None = None

    def wait_ms(self, key: str, per_minute: int) -> int:
        """Takes one request from `key`'s window; returns 0, or the milliseconds to wait.

        One EVALSHA a request (redis-py's Script wrapper cost 0.09 ms more a call); the
        script is loaded again if the server forgot it (a restart).
        """
        args = (per_minute, WINDOW_MS, uuid.uuid4().hex)
        if self._sha is not None:
            try:
                return int(self.client.evalsha(self._sha, 1, key, *args))
            except redis.exceptions.NoScriptError:
                pass
        self._sha = str(self.client.script_load(_SLIDING_WINDOW))
        return int(self.client.evalsha(self._sha, 1, key, *args))

    def close(self) -> None:
        """Closes the Redis connections."""
        self.client.close()


def _per_minute(caller: Caller, kind: Kind, default: int | None) -> int | None:
    own = caller.query_per_minute if kind == "query" else caller.ingest_per_minute
    return own if own is not None else default


def limit(kind: Kind) -> Callable[..., None]:
    """A dependency that answers 429 once the caller's key used up its minute for `kind`."""

    def check(request: Request, caller: CallerDep, runtime: RuntimeDep) -> None:
        settings = runtime.settings
        default = (
            settings.rate_limit_query_per_minute
            if kind == "query"
            else settings.rate_limit_ingest_per_minute
        )
        per_minute = _per_minute(caller, kind, default)
        if caller.server_admin or caller.key_id is None or per_minute is None:
            return
        limiter: RateLimiter = request.app.state.rate_limiter
        try:
            wait = limiter.wait_ms(f"groundwire:rate:{caller.key_id}:{kind}", per_minute)
        except redis.RedisError as error:
            log.warning("rate limit not checked, Redis unreachable: %s", error)
            return
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"this key's {kind} limit of {per_minute} requests per minute is used up",
                {"Retry-After": str(math.ceil(wait / 1000))},
            )

    return check


QueryLimit = Annotated[None, Depends(limit("query"))]
IngestLimit = Annotated[None, Depends(limit("ingest"))]
