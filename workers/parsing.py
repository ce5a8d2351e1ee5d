"""Parsing: a pure function from a document's content and type to the plain text that is chunked.

Plain text and Markdown pass through unchanged (Markdown headings already guide chunking). HTML
becomes text with its structure kept as line breaks: block elements end paragraphs, headings
become Markdown headings (so chunks start at sections), scripts, styles and the head are
dropped, and entities are decoded. selectolax (the lexbor engine: a C implementation of the
WHATWG parsing algorithm, as browsers parse) does the parsing: the standard library's
pure-Python parser took 39% of a worker's time on the load corpus, and libxml2 through lxml
was 20-28% slower than lexbor for the same text. Character offsets of chunks refer to this
text.

Lexbor's tree builder walks the stack of open elements for every block start tag, so its time
grows with the square of the nesting depth (a 640 KB document of unclosed `<dl><dd>` took over
a minute). A document with more than `NESTING_CHECK_TAGS` tags (below that the worst case is
about a second) first has its nesting capped at `MAX_DEPTH` levels, as browsers cap theirs:
deeper start tags, and the end tags that match them, are dropped and their text kept.
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

MAX_DEPTH = 512
NESTING_CHECK_TAGS = 20_000
_VOID_TAGS = "area base br col embed hr img input link meta param source track wbr"
_VOID = frozenset(_VOID_TAGS.split(" "))
# A comment (to its end, or the document's), or a tag: its name, and its attributes up to the
# next `<` or `>` (bounded, so an unterminated tag costs a bounded scan).
_TAG = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\s/<>]*)[^<>]{0,1000}>?", re.S)
# Start tags that close an open sibling, as the HTML tree builder's implied end tags do.
_SIBLINGS = {
    "li": ("li",),
    "dd": ("dd", "dt"),
    "dt": ("dd", "dt"),
    "p": ("p",),
    "option": ("option",),
    "tr": ("tr", "td", "th"),
    "td": ("td", "th"),
    "th": ("td", "th"),
}


def cap_nesting(html: str, max_depth: int = MAX_DEPTH) -> str:
    """Returns `html` with start tags beyond `max_depth` open elements, and their end tags,
    replaced by spaces; `html` itself when nothing is that deep.

    The open elements are tracked as a tree builder would in outline: void elements never
    open, an end tag closes up to its match, and `li`, `dd`, `dt`, `p`, `option` and table
    cells close an open sibling.
    """
    stack: list[str] = []
    dropped = 0
    pieces: list[str] = []
    last = 0
    for match in _TAG.finditer(html):
        name = match.group(2)
        if name is None:  # a comment
            continue
        name = name.lower()
        if name in _VOID:
            continue
        if match.group(1):
            if name in stack:
                while stack.pop() != name:
                    pass
                continue
            if not dropped:
                continue
            dropped -= 1
        else:
            closes = _SIBLINGS.get(name)
            if closes and stack and stack[-1] in closes:
                stack.pop()
            if len(stack) < max_depth:
                stack.append(name)
                continue
            dropped += 1
        pieces.append(html[last : match.start()])
        pieces.append(" ")
        last = match.end()
    if not pieces:
        return html
    pieces.append(html[last:])
    return "".join(pieces)


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
    if html.count("<") > NESTING_CHECK_TAGS:
        html = cap_nesting(html)
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
