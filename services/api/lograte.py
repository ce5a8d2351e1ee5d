"""A logging filter that lets each message through at a bounded rate.

Under a flood (thousands of broken connections a second) one warning repeated filled 134 MB
of log in 20 s. Each message template (logger, level, format string) gets a token bucket of
`rate` records a second with bursts of five seconds' worth, and all of them together ten
times that; what is dropped is counted, and the next record of that template let through
says how many were.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

KEPT_TEMPLATES = 1024  # buckets kept, the least recently used dropped first


class _Bucket:
    __slots__ = ("at", "dropped", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at
        self.dropped = 0

    def take(self, rate: float, burst: float, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class LogRateLimit(logging.Filter):
    """Passes at most `rate` records a second per template (a handler's filter)."""

    def __init__(self, rate: float = 20.0) -> None:
        super().__init__()
        self.rate = max(rate, 0.1)
        self.burst = max(1.0, 5 * self.rate)
        self.total = _Bucket(10 * self.burst, time.monotonic())
        self.buckets: OrderedDict[tuple[str, int, str], _Bucket] = OrderedDict()
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = _Bucket(self.burst, now)
                if len(self.buckets) > KEPT_TEMPLATES:
                    self.buckets.popitem(last=False)
            else:
                self.buckets.move_to_end(key)
            if not (bucket.take(self.rate, self.burst, now) and self._take_total(now)):
                bucket.dropped += 1
                return False
            dropped, bucket.dropped = bucket.dropped, 0
        if dropped:
            record.msg = f"{record.getMessage()} [{dropped} more like this dropped]"
            record.args = None
        return True

    def _take_total(self, now: float) -> bool:
        return self.total.take(10 * self.rate, 10 * self.burst, now)
