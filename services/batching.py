"""Packing items into consecutive groups under a count and a weight limit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def pack(
    items: Iterable[T], weight: Callable[[T], int], max_count: int, max_weight: int
) -> Iterator[list[T]]:
    """Yields consecutive groups of at most `max_count` items and `max_weight` total weight.

    Order is kept; an item heavier than `max_weight` on its own makes a group of one.
    """
    group: list[T] = []
    total = 0
    for item in items:
        w = weight(item)
        if group and (len(group) >= max_count or total + w > max_weight):
            yield group
            group, total = [], 0
        group.append(item)
        total += w
    if group:
        yield group
