"""Office documents: DOCX with python-docx, PPTX with python-pptx, XLSX with openpyxl (all
MIT), ODT from its XML with the standard library. Headings become Markdown headings, tables
header-aware rows, slides pages; titles come from the document's properties, else its first
heading. These formats are zip files: one whose members would expand past
`MAX_EXPANDED_BYTES`, or past 100 MiB at over 100 times its size, is refused before anything
is expanded (a decompression bomb).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import docx
import openpyxl
from docx.table import Table
from pptx import Presentation

from workers.formats.extracted import Extracted, TextBuilder
from workers.formats.tables import rows_to_blocks
from workers.formats.text import first_heading

MAX_EXPANDED_BYTES = 1024 * 1024 * 1024
# Past this size an archive may expand to at most MAX_RATIO times its own: XML compresses
# 10-20 times, a run of one byte a thousand times.
RATIO_CHECKED_BYTES = 100 * 1024 * 1024
MAX_RATIO = 100
_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre)\s*(\d)$", re.I)


def check_archive(data: bytes) -> None:
    """Raises ValueError for a zip that is not one, or that expands past the limit."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as error:
        raise ValueError(f"the file is a damaged zip archive ({error})") from None
    if expanded > MAX_EXPANDED_BYTES or (
        expanded > RATIO_CHECKED_BYTES and expanded > MAX_RATIO * len(data)
    ):
        raise ValueError(
            f"the archive expands to {expanded:,} bytes, over the limit of"
            f" {MAX_EXPANDED_BYTES:,} (a decompression bomb?)"
        )


def _clean(value: Any) -> str | None:
    text = " ".join(str(value or "").split())
    return text or None


def extract_docx(data: bytes) -> Extracted:
    """Paragraphs and tables in document order; `Heading n` styles as headings."""
    check_archive(data)
    document = docx.Document(io.BytesIO(data))
    builder = TextBuilder()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = ([cell.text for cell in row.cells] for row in block.rows)
            for text in rows_to_blocks(rows):
                builder.add(text)
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        match = _HEADING_STYLE.match(style)
        if style.lower() == "title":
            text = "# " + text
        elif match:
            text = "#" * min(int(match.group(1)), 6) + " " + text
        elif style.lower().startswith("list"):
            text = "- " + text
        builder.add(text)
    extracted = builder.build()
    extracted.title = _clean(document.core_properties.title) or first_heading(extracted.text)
    return extracted


def extract_pptx(data: bytes, max_pages: int) -> Extracted:
    """Each slide's title as a heading, then its text, tables and notes; slide n is page n."""
    check_archive(data)
    presentation = Presentation(io.BytesIO(data))
    slides = len(presentation.slides)
    if slides > max_pages:
        raise ValueError(f"the presentation has {slides} slides, over the limit of {max_pages}")
    builder = TextBuilder()
    first_title: str | None = None
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = _clean(title_shape.text_frame.text) if title_shape is not None else None
        first_title = first_title or title
        parts = [f"## {title}" if title else f"## Slide {number}"]
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                rows = ([cell.text for cell in row.cells] for row in shape.table.rows)
                parts.extend(rows_to_blocks(rows))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append(notes.text)
        builder.add("\n\n".join(p.strip() for p in parts if p.strip()), {"page": number})
    title = _clean(presentation.core_properties.title) or first_title
    return builder.build(title, pages=slides)


def extract_xlsx(data: bytes, max_pages: int) -> Extracted:
    """Each sheet under its name as a heading, its rows named by the header row."""
    check_archive(data)
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheets = workbook.worksheets
        if len(sheets) > max_pages:
            raise ValueError(f"the workbook has {len(sheets)} sheets, over the limit")
        builder = TextBuilder()
        for sheet in sheets:
            blocks = list(rows_to_blocks(sheet.iter_rows(values_only=True)))
            if blocks:
                builder.add(f"## {sheet.title}")
                for block in blocks:
                    builder.add(block)
        title = _clean(workbook.properties.title)
        return builder.build(title, sheets=len(sheets))
    finally:
        workbook.close()


_ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_ODF_META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
_DC = "http://purl.org/dc/elements/1.1/"


def _odf_text(element: ElementTree.Element) -> str:
    """An ODF paragraph's text, with its spaces, tabs and line breaks."""
    parts: list[str] = [element.text or ""]
    for child in element:
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "s":
            parts.append(" " * int(child.get(f"{{{_ODF_TEXT}}}c", "1")))
        elif tag == "tab":
            parts.append("\t")
        elif tag == "line-break":
            parts.append("\n")
        else:
            parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _odf_blocks(body: ElementTree.Element) -> Iterator[str]:
    for element in body:
        tag = element.tag
        if tag == f"{{{_ODF_TEXT}}}h":
            level = int(element.get(f"{{{_ODF_TEXT}}}outline-level", "1"))
            yield "#" * min(level, 6) + " " + _odf_text(element).strip()
        elif tag == f"{{{_ODF_TEXT}}}p":
            yield _odf_text(element)
        elif tag == f"{{{_ODF_TABLE}}}table":
            rows = (
                [_odf_text(p) for cell in row for p in cell.iter(f"{{{_ODF_TEXT}}}p")]
                for row in element.iter(f"{{{_ODF_TABLE}}}table-row")
            )
            yield from rows_to_blocks(rows)
        else:  # sections, lists: their paragraphs in order
            yield from _odf_blocks(element)


def extract_odt(data: bytes) -> Extracted:
    """An OpenDocument text: headings by outline level, paragraphs, tables as rows."""
    check_archive(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        content = ElementTree.fromstring(archive.read("content.xml"))
        meta = archive.read("meta.xml") if "meta.xml" in archive.namelist() else None
    body = content.find(f".//{{{_ODF_OFFICE}}}text")
    builder = TextBuilder()
    for block in _odf_blocks(body if body is not None else content):
        builder.add(block)
    extracted = builder.build()
    title = None
    if meta is not None:
        node = ElementTree.fromstring(meta).find(f".//{{{_DC}}}title")
        title = _clean(node.text) if node is not None else None
    extracted.title = title or first_heading(extracted.text)
    return extracted
