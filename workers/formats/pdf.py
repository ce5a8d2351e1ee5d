"""PDF with pypdfium2 (Apache-2.0 / BSD-3-Clause): PDFium, the engine of Chrome's viewer, reads
each page's text layer in content order, with line-end hyphens joined. A page with no text but
with something drawn on it is a scan: it is rendered and read by OCR. Blank pages cost nothing.
The title is the PDF's own (its metadata), else the first line of its text when that is short.
"""

from __future__ import annotations

from typing import Any

import pypdfium2 as pdfium

from workers.formats.extracted import Extracted, TextBuilder
from workers.formats.ocr import read_image

# Scanned pages are rendered at this many dots per inch for OCR.
OCR_DPI = 200
MAX_HEADING_CHARS = 150
_PLACEHOLDERS = {"", "untitled", "unspecified", "anonymous"}


def _title(pdf: pdfium.PdfDocument) -> str | None:
    try:
        title = " ".join(str(pdf.get_metadata_dict().get("Title", "")).split())
    except (pdfium.PdfiumError, ValueError):
        return None
    return None if title.lower() in _PLACEHOLDERS else title


def _page_text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        text = str(textpage.get_text_range())
    finally:
        textpage.close()
    # PDFium marks a word broken over two lines with U+FFFE where the hyphen was.
    return text.replace("\ufffe\r\n", "").replace("\ufffe", "").replace("\r\n", "\n")


def extract_pdf(data: bytes, max_pages: int, ocr: bool) -> Extracted:
    """Text per page (page n as `{"page": n}`), the PDF's title; `pages` in the metadata."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        message = str(error)
        if "password" in message.lower():
            raise ValueError("the PDF is encrypted: it needs a password to open") from None
        raise ValueError(f"the PDF cannot be opened ({message})") from None
    try:
        pages = len(pdf)
        if pages > max_pages:
            raise ValueError(f"the PDF has {pages} pages, over the limit of {max_pages}")
        builder = TextBuilder()
        scanned = 0
        for number in range(1, pages + 1):
            page = pdf[number - 1]
            try:
                text = _page_text(page)
                if not text.strip() and ocr and _draws_something(page):
                    scale = OCR_DPI / 72
                    text = read_image(page.render(scale=scale).to_pil())
                    scanned += 1
            finally:
                page.close()
            builder.add(text, {"page": number})
        metadata: dict[str, Any] = {"pages": pages}
        if scanned:
            metadata["ocr_pages"] = scanned
        extracted = builder.build(_title(pdf), **metadata)
        extracted.title = extracted.title or _first_line(extracted.text)
        return extracted
    finally:
        pdf.close()


def _first_line(text: str) -> str | None:
    """The first line of the text when it looks like a heading (short, with letters)."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    return line if 0 < len(line) <= MAX_HEADING_CHARS and any(c.isalpha() for c in line) else None


def _draws_something(page: Any) -> bool:
    """Whether the page has any image or path on it (a blank page has neither)."""
    return any(True for _ in page.get_objects(max_depth=2))
