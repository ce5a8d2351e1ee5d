"""A per-embedder log of requests made (to a provider, or calls into the local model)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class RequestOutcome(StrEnum):
    """How one embedding request ended (`embedding_requests.outcome`)."""

    OK = "ok"
    RETRIED = "retried"
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"


@dataclass(frozen=True)
class RequestRecord:
    """One request: what it carried, how many attempts it took and how it ended."""

    at: datetime
    inputs: int
    tokens: int
    latency_ms: float
    outcome: RequestOutcome
    attempts: int = 1
    rate_limited: int = 0
    error: str | None = None


def outcome_of(attempts: int, rate_limited: int, failed: bool) -> RequestOutcome:
    """Names how a request ended: failed, rate_limited (waited on a 429), retried, or ok."""
    if failed:
        return RequestOutcome.FAILED
    if rate_limited:
        return RequestOutcome.RATE_LIMITED
    return RequestOutcome.RETRIED if attempts > 1 else RequestOutcome.OK


@dataclass
class RequestLog:
    """Records requests as they finish; the pipeline drains them into the ledger.

    Processes that never drain (the API embeds questions) keep only the latest records.
    """

    _records: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=10_000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: RequestRecord) -> None:
        """Appends one finished request."""
        with self._lock:
            self._records.append(record)

    def drain(self) -> list[RequestRecord]:
        """Returns and forgets every record so far."""
        with self._lock:
            records = list(self._records)
            self._records.clear()
        return records


class Timer:
    """Measures one request: `started` wall time and elapsed milliseconds."""

    def __init__(self) -> None:
        self.started = datetime.now(UTC)
        self._t0 = time.perf_counter()

    def ms(self) -> float:
        """Milliseconds since the timer started."""
        return (time.perf_counter() - self._t0) * 1000
