"""Token-aware, structure-aware chunking: a pure function of text to passages with offsets.

Chunks never exceed `max_tokens` tokens of the embedder's own tokenizer. Inside each window
the cut goes at the strongest boundary found in its second half (a paragraph break or Markdown
heading may also be taken from the second quarter): paragraphs first, then a line break, a
sentence end, any whitespace, and only as a last resort mid-word. Preferring paragraph
breaks keeps boundaries where they were when a distant part of the document changes. Chunks
cut inside a paragraph share up to `overlap` tokens with the next one, started at a word
boundary; a chunk that ends at a paragraph break shares nothing with the next.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from functools import cached_property

from services.embedding.base import Spans, TokenSpans

_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_SENTENCE_END = frozenset(".!?;:")


@dataclass(frozen=True)
class Chunk:
    """A passage: its text, character span in the source, token count and content hash."""

    text: str
    start: int
    end: int
    token_count: int

    @cached_property
    def content_hash(self) -> bytes:
        """SHA-256 of the passage text: the embedding cache key within one embedding space."""
        return hashlib.sha256(self.text.encode("utf-8")).digest()


def _break_strength(text: str, position: int) -> int:
    """Scores a cut just before `position`: 4 paragraph, 3 line, 2 sentence, 1 space, 0 none."""
    q = position
    while q < len(text) and text[q].isspace():
        q += 1
    r = position
    while r > 0 and text[r - 1].isspace():
        r -= 1
    if r == q:
        return 0
    gap = text[r:q]
    if _BLANK_LINE.search(gap) or ("\n" in gap and text.startswith("#", q)):
        return 4
    if "\n" in gap:
        return 3
    if r > 0 and text[r - 1] in _SENTENCE_END:
        return 2
    return 1


def _best_cut(text: str, starts: list[int], first: int, max_tokens: int) -> tuple[int, int]:
    """Returns (token index, strength) of the cut that ends the chunk starting at `first`."""
    high, low, paragraph_low = first + max_tokens, first + max_tokens // 2, first + max_tokens // 4
    best, best_strength = high, -1
    for i in range(high, paragraph_low, -1):
        if i < len(starts) and starts[i] <= starts[i - 1]:
            continue  # both tokens start inside one character
        strength = _break_strength(text, starts[i]) if i < len(starts) else 4
        if i <= low and strength < 4:
            continue
        if strength > best_strength:
            best, best_strength = i, strength
            if strength == 4:
                break
    return best, best_strength


def _overlap_start(text: str, starts: list[int], cut: int, overlap: int, floor: int) -> int:
    """Returns where the next chunk starts: up to `overlap` tokens back, at a word boundary."""
    if overlap <= 0:
        return cut
    for i in range(max(cut - overlap, floor + 1), cut):
        if _break_strength(text, starts[i]) >= 1:
            return i
    return cut


def _make_chunk(text: str, spans: Spans, first: int, stop: int) -> Chunk | None:
    start, end = spans.starts[first], spans.ends[stop - 1]
    raw = text[start:end]
    stripped = raw.strip()
    if not stripped:
        return None
    start += len(raw) - len(raw.lstrip())
    return Chunk(text=stripped, start=start, end=start + len(stripped), token_count=stop - first)


def chunk_text(text: str, tokenizer: TokenSpans, max_tokens: int, overlap: int = 0) -> list[Chunk]:
    """Splits `text` into passages of at most `max_tokens` tokens, sharing up to `overlap`."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap < max_tokens:
        raise ValueError("overlap must be at least 0 and below max_tokens")
    spans = tokenizer.spans(text)
    chunks: list[Chunk] = []
    first, n = 0, len(spans.starts)
    while first < n:
        if n - first <= max_tokens:
            stop, strength = n, 4
        else:
            stop, strength = _best_cut(text, spans.starts, first, max_tokens)
        chunk = _make_chunk(text, spans, first, stop)
        if chunk is not None:
            chunks.append(chunk)
        if stop >= n:
            break
        # A new paragraph or section starts clean: no overlap across it.
        first = stop if strength == 4 else _overlap_start(text, spans.starts, stop, overlap, first)
    return chunks


def chunk_sections(
    text: str, starts: list[int], tokenizer: TokenSpans, max_tokens: int, overlap: int = 0
) -> list[Chunk]:
    """Chunks each section of `text` on its own (sections begin at `starts`, e.g. the pages of
    a PDF), so that no chunk spans two and each can be cited by one; offsets are the text's."""
    bounds = [*sorted({0, *(s for s in starts if 0 < s < len(text))}), len(text)]
    chunks: list[Chunk] = []
    for start, end in itertools.pairwise(bounds):
        for chunk in chunk_text(text[start:end], tokenizer, max_tokens, overlap):
            chunks.append(
                Chunk(chunk.text, chunk.start + start, chunk.end + start, chunk.token_count)
            )
    return chunks
