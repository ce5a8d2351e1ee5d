"""Parsing is bounded: deep nesting is capped, and a document that parses too slowly is cut
off in its child process without harming the next one."""

from __future__ import annotations

import pytest

from workers.parse_process import ParseProcess, ParseTimeout
from workers.parsing import HTML, MAX_DEPTH, NESTING_CHECK_TAGS, cap_nesting, html_to_text

# The document that stalled ingestion: 640 KB of unclosed <dl><dd>, 128,000 levels deep. It
# took lexbor more than a minute; capped, it parses in well under a second.
STALLING = "<dl><dd>x " * 64_000


def test_nesting_beyond_the_cap_is_flattened_and_its_text_kept() -> None:
    deep = "<div>" * 600 + "deepest words" + "</div>" * 600 + "<p>after</p>"
    capped = cap_nesting(deep, max_depth=100)
    assert capped.count("<div>") == 100 and capped.count("</div>") == 100
    assert html_to_text(capped) == "deepest words\n\nafter"


def test_siblings_and_void_elements_do_not_count_as_depth() -> None:
    flat = "<ul>" + "<li>item<br><img src=x>" * 5_000 + "</ul>" + "<p>one<p>two" * 2_000
    assert cap_nesting(flat, max_depth=10) is flat


def test_shallow_documents_are_left_alone() -> None:
    page = "<html><body>" + "<p>text <b>bold</b> and <a href='#'>a link</a></p>" * 100
    assert cap_nesting(page) is page


def test_an_unterminated_tag_or_comment_costs_one_scan() -> None:
    assert cap_nesting("<a<a<a" * 10_000, max_depth=5).count("<a") <= 5 * 2
    assert cap_nesting("<!--" + "<div>" * 1000, max_depth=5).count("<div>") == 1000


def test_the_stalling_document_parses_within_a_time_limit() -> None:
    assert STALLING.count("<") > NESTING_CHECK_TAGS
    parser = ParseProcess(time_limit_s=20)  # it took over 60 s before the cap
    try:
        text = parser.parse(STALLING, HTML)
    finally:
        parser.close()
    assert text.split() == ["x"] * 64_000
    assert cap_nesting(STALLING).count("<dl>") == MAX_DEPTH // 2  # the rest were dropped


def test_a_slow_document_is_cut_off_and_the_next_one_parses() -> None:
    slow = "<div>" * (NESTING_CHECK_TAGS - 10)  # under the check: quadratic, about a second
    parser = ParseProcess(time_limit_s=0.05)
    try:
        with pytest.raises(ParseTimeout, match=r"longer than 0\.05 s"):
            parser.parse(slow, HTML)
        parser.time_limit_s = 10
        assert parser.parse("<h1>Title</h1><p>body</p>", HTML) == "# Title\n\nbody"
        assert parser.parse("plain \x00 text", "text/plain") == "plain \x00 text"
        with pytest.raises(ValueError, match="unsupported content type"):
            parser.parse("x", "application/pdf")
    finally:
        parser.close()


def test_the_child_survives_a_document_it_cannot_parse() -> None:
    parser = ParseProcess(time_limit_s=10)
    try:
        assert parser.parse("\ud800 lone surrogate <b>kept</b>", HTML).endswith("kept")
        assert parser.parse("<p>after</p>", HTML) == "after"
    finally:
        parser.close()
