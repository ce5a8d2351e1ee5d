"""What parsing takes from a file: its text (structure as Markdown headings and blank lines, as
the chunker expects), its title and metadata, and where in the original each part of the text
came from, so that every chunk can be cited by page or by time."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

Location = dict[str, Any]  # {"page": n} or {"start_seconds": s, "end_seconds": e}


class ProviderBusy(Exception):
    """A provider that parsing needs (the transcription model) failed in a way that passes:
    rate limited, unreachable, timed out or failing; the task tries the file again later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Mark:
    """From character `start` of the text on, it comes from `location`."""

    start: int
    location: Location


@dataclass
class Extracted:
    """A parsed file: text to chunk, title, metadata (e.g. `pages`) and location marks."""

    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    marks: list[Mark] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (it crosses from the parser process to the worker)."""
        return {
            "text": self.text,
            "title": self.title,
            "metadata": self.metadata,
            "marks": [[m.start, m.location] for m in self.marks],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Extracted:
        """Rebuilds `to_json`'s form."""
        return cls(
            text=str(value["text"]),
            title=value.get("title"),
            metadata=dict(value.get("metadata") or {}),
            marks=[Mark(int(start), dict(location)) for start, location in value["marks"]],
        )


class TextBuilder:
    """Joins blocks of text with blank lines, marking where each location's text begins."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.marks: list[Mark] = []

    def add(self, block: str, location: Location | None = None) -> None:
        """Appends a block (stripped; nothing when it is blank) from `location`."""
        block = block.strip()
        if not block:
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        if location is not None and (not self.marks or self.marks[-1].location != location):
            self.marks.append(Mark(self._length, location))
        self._parts.append(block)
        self._length += len(block)

    def build(self, title: str | None = None, **metadata: Any) -> Extracted:
        """The text so far, with `title` and `metadata`."""
        return Extracted("".join(self._parts), title, metadata, self.marks)


def locate(marks: list[Mark], start: int, end: int) -> Location | None:
    """Where the text [start, end) sits: the page its start is on, or for timed marks the time
    from the start of the first to the end of the last segment it covers; None without marks.
    """
    if not marks:
        return None
    starts = [m.start for m in marks]
    first = max(bisect_right(starts, start) - 1, 0)
    location = marks[first].location
    if "start_seconds" not in location:
        return dict(location)
    last = max(bisect_right(starts, max(end - 1, start)) - 1, first)
    return {
        "start_seconds": location["start_seconds"],
        "end_seconds": marks[last].location["end_seconds"],
    }
