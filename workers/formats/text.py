"""Text formats from bytes: the encoding detected (charset-normalizer), byte order marks and
CRLF line ends handled, then plain text and Markdown as they are, HTML through the HTML
parser and CSV as header-aware rows. Titles: HTML's `<title>`, else the first heading."""

from __future__ import annotations

import csv
import io
import re

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser

from services import file_types
from workers.formats.extracted import Extracted, TextBuilder
from workers.formats.tables import rows_to_blocks
from workers.parsing import html_to_text

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode(data: bytes) -> str:
    """The text of `data` in whatever encoding it is in, with `\\n` line ends, no BOM and no
    control characters (PostgreSQL text takes no NUL)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding, "replace")
            break
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _guess(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def _guess(data: bytes) -> str:
    """Decodes bytes that are not UTF-8 with charset-normalizer's best guess; among guesses
    that read equally well (short texts often fit several code pages), Windows-1252, the most
    common legacy encoding and what browsers take `latin-1` to mean."""
    matches = list(from_bytes(data))
    if not matches:
        return data.decode("cp1252", "replace")
    best = min(matches, key=lambda m: (m.chaos, -m.coherence))
    for match in matches:
        if match.encoding == "cp1252" and (match.chaos, match.coherence) == (
            best.chaos,
            best.coherence,
        ):
            return str(match)
    return str(best)


def first_heading(text: str) -> str | None:
    """The text of the first Markdown heading, if any."""
    match = _HEADING.search(text)
    return match.group(1).strip() if match else None


def html_title(html: str) -> str | None:
    """The document's `<title>`, if it has one that is not blank."""
    node = LexborHTMLParser(html[:200_000]).css_first("title")
    title = " ".join(node.text().split()) if node is not None else ""
    return title or None


def extract_text(data: bytes, content_type: str) -> Extracted:
    """Plain text, Markdown, HTML or CSV from their bytes."""
    text = decode(data)
    if content_type == file_types.HTML:
        body = html_to_text(text)
        return Extracted(body, html_title(text) or first_heading(body))
    if content_type == file_types.CSV:
        return extract_csv(text)
    return Extracted(text, first_heading(text))


def extract_csv(text: str) -> Extracted:
    """Rows of a CSV (or TSV) file, each with its header's names (see workers/formats/tables)."""
    sample = text[: 64 * 1024]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    builder = TextBuilder()
    for block in rows_to_blocks(rows):
        builder.add(block)
    return builder.build()
