"""Chunking is a pure function: literal strings in, passages with exact offsets out."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from services.embedding.cl100k import TiktokenSpans
from services.embedding.hash import RegexTokenizer
from services.embedding.local import WordPieceTokenizer
from workers.chunking import chunk_text

WORDS = RegexTokenizer()
TOKENIZERS = [WORDS, WordPieceTokenizer(), TiktokenSpans()]

DOC = """# Guide

Install the package. Then run the server.

## Configuration
Settings come from the environment. Every setting has a default, and the defaults suit a laptop.

## Scaling
Add workers to drain the queue faster. Each worker takes one task at a time.
"""


def test_short_text_is_one_chunk() -> None:
    chunks = chunk_text("Hello there, world.", WORDS, 50)
    assert [(c.text, c.start, c.end, c.token_count) for c in chunks] == [
        ("Hello there, world.", 0, 19, 5)
    ]


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text(" \n\t ", WORDS, 10) == []


@pytest.mark.parametrize("tokenizer", TOKENIZERS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize(("max_tokens", "overlap"), [(12, 0), (20, 4), (33, 8)])
def test_chunks_respect_limits_and_offsets(
    tokenizer: object, max_tokens: int, overlap: int
) -> None:
    chunks = chunk_text(DOC, tokenizer, max_tokens, overlap)  # type: ignore[arg-type]
    assert chunks
    for chunk in chunks:
        assert DOC[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip() and chunk.text
        assert chunk.token_count <= max_tokens
        assert len(tokenizer.spans(chunk.text).starts) <= max_tokens  # type: ignore[attr-defined]
    # Together the chunks cover every word of the document, in order.
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    covered: set[int] = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(DOC) if not ch.isspace())


def test_cuts_prefer_paragraphs_and_headings() -> None:
    chunks = chunk_text(DOC, WORDS, 30, 5)
    assert [c.text.splitlines()[0] for c in chunks] == ["# Guide", "## Configuration", "## Scaling"]


def test_long_paragraph_cut_at_sentences_with_overlap() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(30))
    chunks = chunk_text(text, WORDS, 30, 6)
    assert len(chunks) > 3
    for chunk in chunks[:-1]:
        assert chunk.text.endswith(".")
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.start < prev.end, "consecutive chunks inside a paragraph overlap"


def test_word_without_spaces_is_still_split() -> None:
    text = "x" * 5000
    chunks = chunk_text(text, WordPieceTokenizer(), 64)
    assert "".join(c.text for c in chunks) == text
    assert all(c.token_count <= 64 for c in chunks)


def test_editing_one_paragraph_keeps_the_other_chunks() -> None:
    paragraphs = [f"Paragraph {i} talks about topic {i}. " * 3 for i in range(40)]
    before = chunk_text("\n\n".join(paragraphs), WORDS, 60, 8)
    paragraphs[20] = "This paragraph was rewritten completely by an editor today. " * 2
    after = chunk_text("\n\n".join(paragraphs), WORDS, 60, 8)
    old = {c.content_hash for c in before}
    changed = [c for c in after if c.content_hash not in old]
    assert 0 < len(changed) <= 2


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        chunk_text("x", WORDS, 0)
    with pytest.raises(ValueError):
        chunk_text("x", WORDS, 10, 10)


def test_word_tokenizer_matches_its_regular_expression() -> None:
    # The tokenizer works on character classes with array operations; it must find exactly
    # what the regular expression finds, for ASCII and for any other character.
    pattern = re.compile(r"\w+|[^\w\s]")
    alphabet = "ab Z9_-.,'\n\t\x1c\x85\xa0é中ß٣\u2028²😀\ud800"
    rng = random.Random(7)
    texts = ["", " ", "word", "a.b", "naïve café, 東京 — ok?", DOC]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2000)]
    for text in texts:
        spans = WORDS.spans(text)
        expected = [m.span() for m in pattern.finditer(text)]
        assert list(zip(spans.starts, spans.ends, strict=True)) == expected, text


def test_sections_are_chunked_apart_with_the_texts_offsets() -> None:
    from workers.chunking import chunk_sections

    text = "first page words\n\nsecond page words here\n\nthird"
    starts = [0, text.index("second"), text.index("third")]
    chunks = chunk_sections(text, starts, WORDS, max_tokens=50)
    assert [c.text for c in chunks] == ["first page words", "second page words here", "third"]
    assert all(text[c.start : c.end] == c.text for c in chunks)
