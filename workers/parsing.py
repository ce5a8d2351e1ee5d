"""Parsing: a pure function from a document's content and type to the plain text that is chunked.

Plain text and Markdown pass through unchanged (Markdown headings already guide chunking). HTML
becomes text with its structure kept as line breaks: block elements end paragraphs, headings
become Markdown headings (so chunks start at sections), scripts, styles and the head are
dropped, and entities are decoded. selectolax (the lexbor engine: a C implementation of the
WHATWG parsing algorithm, as browsers parse) does the parsing: the standard library's
pure-Python parser took 39% of a worker's time on the load corpus, and libxml2 through lxml
was 20-28% slower than lexbor for the same text. Character offsets of chunks refer to this
text.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
CONTENT_TYPES = (PLAIN, MARKDOWN, HTML)

_BLOCK_TAGS = (
    "address article aside blockquote dd details dl dt div fieldset figcaption figure footer "
    "form header hr li main nav ol p pre section summary table tbody thead tfoot tr ul"
)
_BLOCKS = frozenset(_BLOCK_TAGS.split())
_SKIP = frozenset({"script", "style", "head", "noscript", "template", "svg"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


# Structure is written into the tree as control characters that are not whitespace (they
# have no place in readable text; the input's, and character references to them, are removed
# first), so the parser can serialise all text at once and whitespace can be collapsed over
# the whole of it without losing the line breaks that the markup makes or that a <pre> holds.
# Being ASCII, they keep an ASCII page's text one byte per character throughout: 10% faster
# than the Unicode noncharacters used before.
_NL, _SP, _TAB, _CR, _FF, _VT = "\x01", "\x02", "\x03", "\x04", "\x05", "\x06"
_MARKERS = re.compile("[\x01-\x06]")
_MARKER_REFERENCES = re.compile(r"&#(?:0*[1-6](?![0-9])|[xX]0*[1-6](?![0-9a-fA-F]));?")
_KEPT = ((_NL, "\n"), (_SP, " "), (_TAB, "\t"), (_CR, "\r"), (_FF, "\f"), (_VT, "\v"))
_BREAK = _NL * 2

# What a tag contributes to the text where it opens and where it closes.
_OPEN = {
    **{tag: _BREAK for tag in _BLOCKS},
    **{tag: _BREAK + "#" * level + " " for tag, level in _HEADINGS.items()},
    "li": _NL + "- ",
    "br": _NL,
    "td": " ",
    "th": " ",
}
_CLOSE = {tag: _BREAK for tag in (*_BLOCKS, *_HEADINGS) if tag != "li"}
_MARKED = ", ".join(sorted(tag for tag in _OPEN if tag != "pre"))
_SKIPPED = sorted(_SKIP)


def html_to_text(html: str) -> str:
    """Returns the readable text of an HTML document, paragraphs separated by blank lines.

    Outside <pre>, every run of whitespace becomes one space, as a browser shows it. Lines
    are stripped and at most one blank line separates paragraphs.
    """
    if not html.strip():
        return ""
    if any(marker in html for marker, _ in _KEPT):  # six substring searches beat one regex scan
        html = _MARKERS.sub("", html)
    if "&#" in html:
        html = _MARKER_REFERENCES.sub("", html)
    tree = LexborHTMLParser(html)
    tree.strip_tags(_SKIPPED)  # dropped with their content: what is never shown costs nothing
    for pre in tree.css("pre"):  # its whitespace is kept: written as markers
        if pre.parent is None:  # inside a <pre> replaced already
            continue
        content = pre.text(deep=True, separator="", strip=False)
        for marker, char in _KEPT:
            content = content.replace(char, marker)
        pre.replace_with(_BREAK + content + _BREAK)
    for element in tree.css(_MARKED):
        tag = element.tag or ""
        element.insert_before(_OPEN[tag])
        closing = _CLOSE.get(tag)
        if closing is not None:
            element.insert_after(closing)
    root = tree.root
    if root is None:
        return ""
    text = " ".join(root.text(deep=True, separator="", strip=False).split())
    for marker, char in _KEPT:
        text = text.replace(marker, char)
    lines = [line.strip() for line in text.split("\n")]
    kept = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    return "\n".join(kept).strip()


def parse(content: str, content_type: str) -> str:
    """Returns the text to chunk for `content` of `content_type`."""
    if content_type == HTML:
        return html_to_text(content)
    if content_type in (PLAIN, MARKDOWN):
        return content
    raise ValueError(f"unsupported content type {content_type!r}")
