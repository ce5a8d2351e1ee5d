"""Context packing is pure: merge adjacent chunks, drop repeats, fit the budget, number [n]."""

from __future__ import annotations

import hashlib

from services.query.candidates import Candidate
from services.query.context import merge_passages, pack

DOC = "Alpha one. Alpha two. Alpha three. Alpha four."


def cand(doc: str, ordinal: int, start: int, end: int, text: str, score: float = 0.5) -> Candidate:
    return Candidate(
        score=score,
        rank_score=score,
        document_id=doc,
        title=doc.title(),
        source=None,
        text=text,
        ordinal=ordinal,
        start=start,
        end=end,
        metadata={},
        content_hash=hashlib.sha256(text.encode()).digest(),
    )


def words(text: str) -> int:
    return len(text.split())


def test_adjacent_and_overlapping_chunks_merge_by_offsets() -> None:
    # Chunks 0 and 1 overlap ("Alpha two."), chunk 2 follows chunk 1 after a space.
    two, three, four = DOC.index("Alpha two"), DOC.index("Alpha three"), DOC.index("Alpha four")
    c0 = cand("a", 0, 0, three - 1, DOC[0 : three - 1])
    c1 = cand("a", 1, two, four - 1, DOC[two : four - 1])
    c2 = cand("a", 2, four, len(DOC), DOC[four:])
    other = cand("b", 0, 0, 5, "Beta.", score=0.4)
    spans = merge_passages([c1, other, c2, c0])
    assert [s.document_id for s in spans] == ["a", "b"], "merged span keeps its best rank"
    merged = spans[0]
    assert merged.ordinals == (0, 1, 2)
    assert merged.text == "Alpha one. Alpha two. Alpha three.\n\nAlpha four."
    assert (merged.start, merged.end) == (0, len(DOC))


def test_repeated_text_is_dropped() -> None:
    first = cand("a", 0, 0, 9, "Same text", score=0.9)
    copy = cand("b", 4, 100, 109, "Same text", score=0.8)
    assert [s.document_id for s in merge_passages([first, copy])] == ["a"]


def test_pack_fits_the_budget_and_numbers_passages() -> None:
    spans = merge_passages(
        [
            cand("a", 0, 0, 20, "short passage one"),
            cand("b", 0, 0, 200, "a much longer passage " * 10),
            cand("c", 0, 0, 20, "short passage three"),
        ]
    )
    packed = pack(spans, max_tokens=12, count_tokens=words)
    assert [(n, s.document_id) for n, s, _ in packed] == [(1, "a"), (2, "c")]
    assert packed[1][2].startswith("[2] C\n")
    assert sum(words(block) for _, _, block in packed) <= 12
    assert pack(spans, max_tokens=2, count_tokens=words) == []


def test_passages_of_two_pages_stay_two_citations() -> None:
    from dataclasses import replace

    first = replace(cand("a", 3, 0, 10, "Page three"), location={"page": 3})
    second = replace(cand("a", 4, 12, 21, "Page four", score=0.9), location={"page": 4})
    spans = merge_passages([second, first])
    assert [(s.ordinals, s.location) for s in spans] == [((4,), {"page": 4}), ((3,), {"page": 3})]
    timed = [
        replace(cand("t", 0, 0, 5, "Hello"), location={"start_seconds": 0.0, "end_seconds": 2.0}),
        replace(cand("t", 1, 6, 11, "World"), location={"start_seconds": 2.0, "end_seconds": 3.5}),
    ]
    (joined,) = merge_passages(timed)
    assert joined.location == {"start_seconds": 0.0, "end_seconds": 3.5}
