"""What a file is, from its first bytes: a pure function, so a PDF named `.txt` is a PDF.

Binary formats are known by their signatures; zip containers (DOCX, PPTX, XLSX, ODT) by the
names of their members; what is left is text, told apart by a look at its start (HTML, an
e-mail message) and, for Markdown and CSV, which have no signature, by the file's name.
Anything else is `application/octet-stream`, which ingestion refuses with a reason.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePath

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
EML = "message/rfc822"
CSV = "text/csv"
PLAIN = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
WAV = "audio/wav"
MP3 = "audio/mpeg"
M4A = "audio/mp4"
OGG = "audio/ogg"
FLAC = "audio/flac"
UNKNOWN = "application/octet-stream"

IMAGES = frozenset({PNG, JPEG, TIFF})
AUDIO = frozenset({WAV, MP3, M4A, OGG, FLAC})
TEXTS = frozenset({PLAIN, MARKDOWN, HTML, CSV})
SUPPORTED = frozenset({PDF, DOCX, PPTX, XLSX, ODT, EML, *TEXTS, *IMAGES, *AUDIO})

# A zip with more members than any office document has is not one (reading its directory
# alone costs memory: 300,000 empty members take 160 MB).
MAX_ZIP_MEMBERS = 50_000
# How many leading bytes `sniff` looks at (a zip's member names are read from the whole file).
HEAD_BYTES = 8192

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, PDF),
    (b"\x89PNG\r\n\x1a\n", 0, PNG),
    (b"\xff\xd8\xff", 0, JPEG),
    (b"II*\x00", 0, TIFF),
    (b"MM\x00*", 0, TIFF),
    (b"fLaC", 0, FLAC),
    (b"OggS", 0, OGG),
    (b"ID3", 0, MP3),
)
_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_CSV_SUFFIXES = frozenset({".csv", ".tsv"})
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,76}:[ \t]")
_MAIL_HEADERS = frozenset(
    {b"from", b"to", b"subject", b"date", b"message-id", b"received", b"mime-version",
     b"return-path", b"cc", b"reply-to", b"delivered-to", b"x-mailer", b"content-type"}
)  # fmt: skip


def sniff(head: bytes, filename: str | None = None, whole: io.BufferedIOBase | None = None) -> str:
    """Returns the content type of a file whose first bytes are `head`.

    `whole`, a seekable binary file with all of it, lets zip containers be told apart by their
    members; without it a zip is `application/octet-stream`.
    """
    for signature, offset, kind in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return kind
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return _text_kind(head, filename)  # UTF-16 or UTF-32 text (its BOM looks like MP3)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[4:8] == b"ftyp":
        return M4A if head[8:12] in (b"M4A ", b"M4B ", b"mp42", b"isom", b"dash") else UNKNOWN
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return MP3  # an MPEG audio frame header (no ID3 tag)
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(whole) if whole is not None else UNKNOWN
    if not _looks_like_text(head):
        return UNKNOWN
    return _text_kind(head, filename)


def _text_kind(head: bytes, filename: str | None) -> str:
    if _HTML_START.match(_without_bom(head)):
        return HTML
    if _is_mail(head):
        return EML
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in _MARKDOWN_SUFFIXES:
        return MARKDOWN
    if suffix in _CSV_SUFFIXES:
        return CSV
    if suffix in (".html", ".htm", ".xhtml"):
        return HTML
    return PLAIN


def _zip_kind(whole: io.BufferedIOBase) -> str:
    try:
        whole.seek(0)
        with zipfile.ZipFile(whole) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                return UNKNOWN
            names = {member.filename for member in members}
            mimetype = next((m for m in members if m.filename == "mimetype"), None)
            if mimetype is not None and mimetype.file_size <= 256:  # never expand more
                with archive.open(mimetype) as member:
                    if member.read(256).strip() == ODT.encode():
                        return ODT
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return UNKNOWN
    finally:
        whole.seek(0)
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return DOCX
        if "ppt/presentation.xml" in names:
            return PPTX
        if "xl/workbook.xml" in names:
            return XLSX
    return UNKNOWN


def _without_bom(head: bytes) -> bytes:
    for bom in (b"\xef\xbb\xbf",):
        if head.startswith(bom):
            return head[len(bom) :]
    return head


def _looks_like_text(head: bytes) -> bool:
    """No NUL bytes (UTF-16 with its BOM aside) and under 10% control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte order mark
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls * 10 <= len(head)


def _is_mail(head: bytes) -> bool:
    """At least two header lines at the start, one of them a known mail header."""
    lines = _without_bom(head).split(b"\n", 20)[:20]
    known = seen = 0
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue  # a folded header's continuation
        if not _HEADER_LINE.match(line):
            return False
        seen += 1
        known += line.split(b":", 1)[0].lower() in _MAIL_HEADERS
    return seen >= 2 and known >= 2
