"""The event reader's bookkeeping: ids that arrive late fill their gaps, and ids that never
arrive are given up on, so the horizon is where nothing more can come."""

from __future__ import annotations

from services.events.horizon import Horizon
from services.events.streams import sse


def test_late_ids_fill_their_gaps_and_the_horizon_waits_for_them() -> None:
    seen = Horizon(10, gap_ttl_s=30)
    assert seen.saw([11, 12, 15], now=0) == [11, 12, 15]
    assert seen.horizon == 12  # 13 and 14 may still commit
    assert seen.saw([14, 15, 16], now=1) == [14, 16]  # 15 again is not new
    assert seen.horizon == 12
    assert seen.saw([13], now=2) == [13]
    assert seen.horizon == 16 and seen.gaps == []


def test_ids_that_never_arrive_are_given_up_on() -> None:
    seen = Horizon(0, gap_ttl_s=30)
    seen.saw([1, 1_000_001], now=0)  # a rolled-back load between: one range, not a million
    assert len(seen.gaps) == 1 and seen.horizon == 1
    seen.expire(now=10)
    assert seen.horizon == 1
    seen.expire(now=31)
    assert seen.horizon == 1_000_001
    assert seen.saw([500], now=32) == []  # too late: given up on


def test_an_event_is_written_as_the_standard_says() -> None:
    assert sse("progress", {"done": 1}, 7) == b'id: 7\nevent: progress\ndata: {"done": 1}\n\n'
    assert sse("document", {"id": "a"}) == b'event: document\ndata: {"id": "a"}\n\n'
