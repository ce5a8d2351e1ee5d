"""Prompt-ready context: pure functions that merge, de-duplicate and pack passages into a
token budget, marking each with `[n]` so a model can cite it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.query.candidates import Candidate


@dataclass(frozen=True)
class Span:
    """One or more adjacent chunks of a document, merged into one passage."""

    document_id: str
    title: str | None
    source: str | None
    score: float
    ordinals: tuple[int, ...]
    start: int
    end: int
    text: str
    location: dict[str, Any] | None = None


def join_locations(
    first: dict[str, Any] | None, second: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The location of two spans merged (the first starting no later): the first's page, or
    the time from the earlier start to the later end."""
    if first is None or second is None or "start_seconds" not in first:
        return first if first is not None else second
    if "start_seconds" not in second:
        return first
    return {
        "start_seconds": min(first["start_seconds"], second["start_seconds"]),
        "end_seconds": max(first["end_seconds"], second["end_seconds"]),
    }


def _join(first: Span, second: Span) -> Span:
    """Merges two spans of one document, `first` starting no later than `second`."""
    if second.start <= first.end:  # overlapping or touching: splice by character offsets
        tail = second.text[first.end - second.start :] if second.end > first.end else ""
        text = first.text + tail
    else:
        text = first.text + "\n\n" + second.text
    return Span(
        document_id=first.document_id,
        title=first.title,
        source=first.source,
        score=max(first.score, second.score),
        ordinals=tuple(sorted(set(first.ordinals) | set(second.ordinals))),
        start=first.start,
        end=max(first.end, second.end),
        text=text,
        location=join_locations(first.location, second.location),
    )


def _adjacent(a: Span, b: Span) -> bool:
    if a.document_id != b.document_id:
        return False
    if a.location and b.location and a.location.get("page") != b.location.get("page"):
        return False  # a citation names one page: passages of two pages stay apart
    near = min(b.ordinals) - max(a.ordinals) == 1 or min(a.ordinals) - max(b.ordinals) == 1
    return near or (a.start <= b.end and b.start <= a.end)


def merge_passages(ranked: Sequence[Candidate]) -> list[Span]:
    """Merges adjacent chunks of a document and drops repeated texts, keeping rank order.

    A merged passage takes the place of its best-ranked part.
    """
    seen_text: set[bytes] = set()
    spans: list[Span] = []
    for c in ranked:
        if c.content_hash in seen_text:
            continue
        seen_text.add(c.content_hash)
        span = Span(
            c.document_id,
            c.title,
            c.source,
            c.score,
            (c.ordinal,),
            c.start,
            c.end,
            c.text,
            c.location,
        )
        position = len(spans)
        i = 0
        while i < len(spans):
            if _adjacent(spans[i], span):
                other = spans.pop(i)
                position = min(position, i)
                first, second = sorted((other, span), key=lambda s: s.start)
                span = _join(first, second)
                i = 0  # the grown span may now touch another one
            else:
                i += 1
        spans.insert(position, span)
    return spans


def render(n: int, span: Span) -> str:
    """Formats one cited passage."""
    heading = span.title or span.document_id
    if span.source:
        heading += f" ({span.source})"
    return f"[{n}] {heading}\n{span.text}"


def pack(
    spans: Sequence[Span], max_tokens: int, count_tokens: Callable[[str], int]
) -> list[tuple[int, Span, str]]:
    """Returns (n, span, block) for the spans that fit the budget, in rank order."""
    packed: list[tuple[int, Span, str]] = []
    used = 0
    for span in spans:
        block = render(len(packed) + 1, span)
        cost = count_tokens(block) + (2 if packed else 0)
        if used + cost <= max_tokens:
            packed.append((len(packed) + 1, span, block))
            used += cost
    return packed
