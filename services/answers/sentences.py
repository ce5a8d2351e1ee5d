"""An answer's sentences and the `[n]` citations each carries: pure functions.

A model cites as `… [1].`, `… [1][3].` or `…. [2]`; each marker belongs to the sentence it
follows or ends. A sentence is cut at `.`, `!` or `?` followed by a space and a capital, digit
or quote, and at line breaks (lists); decimals, initials and common abbreviations are not
cuts. A list item's number or bullet is not part of its sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKER = re.compile(r"\[(\d{1,3})\]")
_MARKERS_AT_START = re.compile(r"^(?:\s*\[\d{1,3}\])+")
# After `.`, `!`, `?` (and any markers written after them: `….[2] Next`), before a capital
# of any script, a digit, a quote or a bracket; after CJK sentence ends; at line breaks.
_CUT = re.compile(
    r"(?<=[.!?])(?:\[\d{1,3}\])*\s+(?=[\[\"'(\d]|[^\W\d_](?<=[^a-z]))|(?<=[\u3002\uff01\uff1f])\s*|\n+"
)
_MARKERS_AFTER_STOP = re.compile(r"(?:\[\d{1,3}\])+")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*•+])\s+")
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "cf",
        "fig",
        "al",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "no",
        "approx",
        "ca",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
    ]
)
_REFUSALS = re.compile(
    r"\b(?:i\s+(?:do\s+not|don'?t|cannot|can'?t)\s+(?:know|find|answer|tell|say)"
    r"|(?:passages?|context|documents?|sources?)\s+(?:do(?:es)?\s+not|don'?t|doesn'?t)"
    r"\s+(?:contain|provide|mention|say|include|answer|cover|address|specify|state)"
    r"|no\s+(?:relevant\s+)?information\s+(?:is\s+)?(?:available|provided|given|about|on)"
    r"|(?:cannot|can'?t|unable\s+to)\s+(?:be\s+)?(?:answer|determine|find)(?:ed)?)",
    re.I,
)


@dataclass(frozen=True)
class Sentence:
    """A sentence as the model wrote it, without its markers, and the passages it cites."""

    text: str
    citations: tuple[int, ...]


def _is_abbreviation(before: str) -> bool:
    if before.strip().rstrip(".").isdigit():  # `1. ` of a numbered list
        return True
    word = before.rstrip(".!?").rsplit(None, 1)[-1].lower() if before.strip() else ""
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(answer: str) -> list[Sentence]:
    """The answer's sentences in order, each with the `[n]` markers that belong to it."""
    pieces: list[str] = []
    start = 0
    for cut in _CUT.finditer(answer):
        piece = answer[start : cut.start()]
        if cut.group(0).startswith("\n") or not _is_abbreviation(piece):
            markers = _MARKERS_AFTER_STOP.match(cut.group(0))
            pieces.append(piece + (markers.group(0) if markers else ""))
            start = cut.end()
    pieces.append(answer[start:])
    sentences: list[Sentence] = []
    carried: list[int] = []
    for piece in pieces:
        piece = _LIST_ITEM.sub("", piece)  # `1. ` or `- ` of a list item is not a claim
        leading = _MARKERS_AT_START.match(piece)
        if leading and sentences:  # `…. [2]`: the markers close the sentence before
            last = sentences.pop()
            extra = tuple(int(n) for n in _MARKER.findall(leading.group(0)))
            sentences.append(Sentence(last.text, _unique(last.citations + extra)))
            piece = piece[leading.end() :]
        citations = tuple(carried) + tuple(int(n) for n in _MARKER.findall(piece))
        carried = []
        text = " ".join(_MARKER.sub(" ", piece).split())
        text = re.sub(r"\s+([.,;:!?\u3002\uff01\uff1f])", r"\1", text).strip()
        if not text.strip(" .,;:-*•"):
            carried = list(citations)  # markers alone on a line: the next sentence's
            continue
        sentences.append(Sentence(text, _unique(citations)))
    if carried and sentences:
        last = sentences.pop()
        sentences.append(Sentence(last.text, _unique(last.citations + tuple(carried))))
    return sentences


def _unique(numbers: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(numbers))


def has_markers(answer: str) -> bool:
    """Whether the answer cites any passage."""
    return bool(_MARKER.search(answer))


def is_refusal(answer: str) -> bool:
    """Whether the answer says the passages do not answer the question."""
    return bool(_REFUSALS.search(answer))


def strip_markers(text: str, keep: set[int]) -> str:
    """The text with markers of passages outside `keep` removed."""
    return _MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in keep else "", text)
