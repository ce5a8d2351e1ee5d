"""Parsing: a pure function from a document's content and type to the plain text that is chunked.

Plain text and Markdown pass through unchanged (Markdown headings already guide chunking). HTML
becomes text with its structure kept as line breaks: block elements end paragraphs, headings
become Markdown headings (so chunks start at sections), scripts, styles and the head are
dropped, and entities are decoded. lxml (libxml2's HTML parser, tolerant of real-world markup)
does the parsing: the standard library's pure-Python parser took 39% of a worker's time on the
load corpus. Character offsets of chunks refer to this text.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

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
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


# What a tag contributes to the text where it opens and where it closes.
_OPEN = {
    **{tag: "\n\n" for tag in _BLOCKS},
    **{tag: "\n\n" + "#" * level + " " for tag, level in _HEADINGS.items()},
    "li": "\n- ",
    "br": "\n",
    "td": " ",
    "th": " ",
}
_CLOSE = {tag: "\n\n" for tag in (*_BLOCKS, *_HEADINGS) if tag != "li"}


def _flowing(data: str) -> str:
    """Text outside <pre>: line breaks become spaces, runs of whitespace one space."""
    data = data.replace("\n", " ")
    # Most text nodes hold no run of whitespace: skip the regular expression for them.
    if "  " in data or "\t" in data or "\r" in data or "\f" in data or "\v" in data:
        data = _SPACES.sub(" ", data)
    return data


def html_to_text(html: str) -> str:
    """Returns the readable text of an HTML document, paragraphs separated by blank lines."""
    if not html.strip():
        return ""
    parser = lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = lxml_html.document_fromstring(html.encode("utf-8", "replace"), parser=parser)
    except etree.ParserError:
        return ""
    # Dropped in C before the walk: what is never shown costs no Python per node.
    etree.strip_elements(root, *_SKIP, with_tail=False)
    parts: list[str] = []
    append = parts.append
    preformatted = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            opening = _OPEN.get(tag)
            if opening is not None:
                append(opening)
                if tag == "pre":
                    preformatted += 1
            text = element.text
            if text and tag:
                append(text if preformatted else _flowing(text))
        else:
            closing = _CLOSE.get(tag)
            if closing is not None:
                append(closing)
                if tag == "pre" and preformatted:
                    preformatted -= 1
            tail = element.tail
            if tail:
                append(tail if preformatted else _flowing(tail))
    lines = [line.strip() for line in "".join(parts).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse(content: str, content_type: str) -> str:
    """Returns the text to chunk for `content` of `content_type`."""
    if content_type == HTML:
        return html_to_text(content)
    if content_type in (PLAIN, MARKDOWN):
        return content
    raise ValueError(f"unsupported content type {content_type!r}")
