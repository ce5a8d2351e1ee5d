"""HTML becomes structured plain text; text and Markdown pass through."""

from __future__ import annotations

import pytest

from workers.parsing import html_to_text, parse

PAGE = """<!doctype html><html><head><title>Ignored</title><style>p{color:red}</style></head>
<body><nav>Home</nav><h1>Backups</h1><p>Use <b>pg_dump</b> &amp; restore
   with <code>pg_restore</code>.</p><script>alert(1)</script>
<h2>Options</h2><ul><li>--format</li><li>--jobs</li></ul>
<pre>pg_dump -Fc db
  &gt; out.dump</pre><table><tr><td>a</td><td>b</td></tr></table></body></html>"""


def test_html_keeps_structure_and_drops_noise() -> None:
    assert html_to_text(PAGE) == (
        "Home\n\n# Backups\n\nUse pg_dump & restore with pg_restore.\n\n## Options\n\n"
        "- --format\n- --jobs\n\npg_dump -Fc db\n> out.dump\n\na b"
    )


def test_plain_and_markdown_pass_through() -> None:
    text = "# Title\n\n  indented  text <b>not html</b>"
    assert parse(text, "text/plain") == text
    assert parse(text, "text/markdown") == text


def test_unknown_type() -> None:
    with pytest.raises(ValueError):
        parse("x", "application/pdf")


def test_whitespace_collapses_across_elements_but_not_in_pre() -> None:
    html = "<p>one <b> two</b>\n\t three&nbsp; four</p><pre>x  =  1\n    y\t= 2</pre>"
    assert html_to_text(html) == "one two three four\n\nx  =  1\ny\t= 2"


def test_break_characters_in_the_input_are_text_not_structure() -> None:
    # The parser writes line breaks into the tree as control characters; ones in the input,
    # or written as character references, are dropped before parsing, so they can never turn
    # into breaks.
    assert html_to_text("<p>a\x01\x01b\x02c</p>") == "abc"
    assert html_to_text("<p>a&#1;&#x02;b&#0003c&#X4g&#49;&#x31;</p>") == "abcg11"
    assert html_to_text("<pre>a\x01b\x03c&#x5;d</pre>") == "abcd"
    assert html_to_text("<p>a\ufdd0b</p>") == "a\ufdd0b"


def test_empty_and_broken_markup() -> None:
    assert html_to_text("   ") == ""
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"
    assert html_to_text("<li>one<li>two") == "- one\n- two"
