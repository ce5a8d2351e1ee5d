"""Which event ids a reader has seen, when ids are given out before their transactions
commit: an id below the newest seen may still arrive (its transaction commits later), or
never (it rolled back). A pure bookkeeping class, so the rule is tested on its own.

`horizon` is the id up to which nothing more can arrive: every id at or below it has been
seen or given up on (after `gap_ttl_s`, longer than any transaction that changes a status).
A client that reconnects with it as Last-Event-ID misses nothing, at the cost of seeing
again the few events past it. Gaps are kept as ranges, so a rolled-back load of a million
documents is one range, not a million ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Gap:
    """Ids `low` to `high` (inclusive), missing since `since`."""

    low: int
    high: int
    since: float


class Horizon:
    """Seen ids, the gaps below the newest, and the horizon."""

    def __init__(self, start: int, gap_ttl_s: float = 60.0) -> None:
        self.newest = start
        self.gap_ttl_s = gap_ttl_s
        self.gaps: list[Gap] = []  # in order of ids

    def saw(self, ids: Iterable[int], now: float) -> list[int]:
        """Records ids fetched; returns those not seen before, in order."""
        fresh = []
        for event_id in sorted(set(ids)):
            if event_id > self.newest:
                if event_id > self.newest + 1:
                    self.gaps.append(Gap(self.newest + 1, event_id - 1, now))
                self.newest = event_id
                fresh.append(event_id)
            elif self._fill(event_id):
                fresh.append(event_id)
        return fresh

    def _fill(self, event_id: int) -> bool:
        for i, gap in enumerate(self.gaps):
            if gap.low <= event_id <= gap.high:
                parts = [
                    Gap(low, high, gap.since)
                    for low, high in ((gap.low, event_id - 1), (event_id + 1, gap.high))
                    if low <= high
                ]
                self.gaps[i : i + 1] = parts
                return True
        return False

    def expire(self, now: float) -> None:
        """Gives up on gaps older than the time-to-live (their transactions rolled back)."""
        self.gaps = [g for g in self.gaps if now - g.since <= self.gap_ttl_s]

    @property
    def horizon(self) -> int:
        return self.gaps[0].low - 1 if self.gaps else self.newest
