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


class _TextExtractor:
    """Builds structured text from start tags, end tags and text, in document order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.skipping = 0
        self.preformatted = 0

    def handle_starttag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n" if tag != "li" else "\n- ")
            if tag == "pre":
                self.preformatted += 1
        elif tag in ("br", "td", "th"):
            self.parts.append("\n" if tag == "br" else " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "li":
            pass  # the next item or the list's end breaks the line
        elif tag in _HEADINGS or tag in _BLOCKS:
            self.parts.append("\n\n")
            if tag == "pre":
                self.preformatted = max(0, self.preformatted - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.preformatted:
            self.parts.append(data)
            return
        data = data.replace("\n", " ")
        # Most text nodes hold no run of whitespace: skip the regular expression for them.
        if "  " in data or "\t" in data or "\r" in data or "\f" in data or "\v" in data:
            data = _SPACES.sub(" ", data)
        self.parts.append(data)


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
    extractor = _TextExtractor()
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            extractor.handle_starttag(tag)
            if element.text and tag:
                extractor.handle_data(element.text)
        else:
            extractor.handle_endtag(tag)
            if element.tail:
                extractor.handle_data(element.tail)
    lines = [line.strip() for line in "".join(extractor.parts).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse(content: str, content_type: str) -> str:
    """Returns the text to chunk for `content` of `content_type`."""
    if content_type == HTML:
        return html_to_text(content)
    if content_type in (PLAIN, MARKDOWN):
        return content
    raise ValueError(f"unsupported content type {content_type!r}")
