"""Parsing files by content: each format's text, title, metadata and page locations, from
real files made by the libraries that write them; and the reasons hostile files are refused."""

from __future__ import annotations

import io
import resource
import time
import zipfile

import pytest

from services import file_types
from services.file_types import sniff
from tests.support import files
from workers.formats import Options, extract
from workers.formats.extracted import Mark, TextBuilder, locate

OPTIONS = Options(max_pages=5000, ocr=True)


def sniffed(data: bytes, filename: str) -> str:
    return sniff(data[:8192], filename, io.BytesIO(data))


@pytest.mark.parametrize(
    ("make", "filename", "expected"),
    [
        (files.pdf, "manual.txt", file_types.PDF),
        (files.docx_file, "notes.bin", file_types.DOCX),
        (files.pptx_file, "deck", file_types.PPTX),
        (files.xlsx_file, "sheet.csv", file_types.XLSX),
        (files.odt_file, "log.odt", file_types.ODT),
        (files.eml_file, "message", file_types.EML),
        (lambda: files.image(["x"], "PNG"), "a.jpg", file_types.PNG),
        (lambda: files.image(["x"], "JPEG"), "a.png", file_types.JPEG),
        (lambda: files.image(["x"], "TIFF"), "a", file_types.TIFF),
        (lambda: b"<!DOCTYPE html><title>t</title>", "page.txt", file_types.HTML),
        (lambda: b"# Heading\n\ntext", "readme.md", file_types.MARKDOWN),
        (lambda: b"a,b\n1,2\n", "table.csv", file_types.CSV),
        (lambda: "plain caf\xe9".encode("latin-1"), "notes", file_types.PLAIN),
        (lambda: b"RIFF\x24\x00\x00\x00WAVEfmt ", "clip.mp3", file_types.WAV),
        (lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(200), "tool.txt", file_types.UNKNOWN),
        (lambda: b"PK\x03\x04garbage", "x.docx", file_types.UNKNOWN),
        (lambda: "UTF-16 notes".encode("utf-16"), "notes.txt", file_types.PLAIN),
        (lambda: "x,y\n".encode("utf-16"), "t.csv", file_types.CSV),
        (lambda: "UTF-32 notes".encode("utf-32"), "notes.txt", file_types.PLAIN),
    ],
)
def test_formats_are_told_by_content_not_by_name(make, filename, expected) -> None:
    assert sniffed(make(), filename) == expected


def test_pdf_text_per_page_with_title_and_pages() -> None:
    parsed = extract(files.pdf(), file_types.PDF, "h.pdf", OPTIONS).extracted
    assert parsed.title == "Harbour Handbook"
    assert parsed.metadata["pages"] == 3
    for number, sentence in enumerate(files.PAGES, start=1):
        start = parsed.text.index(sentence)
        assert locate(parsed.marks, start, start + len(sentence)) == {"page": number}
    assert parsed.text.index("Section 2") < parsed.text.index(files.PAGES[1])


def test_scanned_pdf_pages_and_images_are_read_by_ocr() -> None:
    scan = files.scanned_pdf([["Tide tables for the harbour"], ["Moorings are free in winter"]])
    parsed = extract(scan, file_types.PDF, "scan.pdf", OPTIONS).extracted
    assert parsed.metadata == {"pages": 2, "ocr_pages": 2}
    start = parsed.text.index("Moorings are free in winter")
    assert locate(parsed.marks, start, start + 5) == {"page": 2}
    assert "Tide tables for the harbour" in parsed.text
    for kind in ("PNG", "JPEG", "TIFF"):
        image = files.image(["Invoice 4471 was paid"], kind)
        content_type = sniffed(image, "x")
        picture = extract(image, content_type, "x", OPTIONS).extracted
        assert "Invoice 4471 was paid" in picture.text, kind
        assert picture.marks[0].location == {"page": 1}


def test_office_documents_keep_their_structure_and_titles() -> None:
    word = extract(files.docx_file(), file_types.DOCX, "n.docx", OPTIONS).extracted
    assert word.title == "Ferry Timetable Notes"
    assert "# Winter schedule" in word.text and "- Bring a lantern after dusk." in word.text
    assert "Route: Island; Departure: 07:40" in word.text and word.marks == []
    untitled = extract(files.docx_file(title=None), file_types.DOCX, "n.docx", OPTIONS).extracted
    assert untitled.title == "Winter schedule"  # the first heading

    slides = extract(files.pptx_file(), file_types.PPTX, "d.pptx", OPTIONS).extracted
    assert slides.title == "Quarterly results" and slides.metadata["pages"] == 3
    start = slides.text.index("Forty copper lanterns")
    assert locate(slides.marks, start, start + 10) == {"page": 2}
    assert "## Lantern programme" in slides.text

    sheet = extract(files.xlsx_file(), file_types.XLSX, "s.xlsx", OPTIONS).extracted
    assert sheet.title == "Harbour inventory"
    assert "## Inventory" in sheet.text
    assert "Item: copper lantern; Quantity: 40; Location: north pier" in sheet.text

    odt = extract(files.odt_file(), file_types.ODT, "l.odt", OPTIONS).extracted
    assert odt.text == "# Lighthouse log\n\nThe keeper trimmed the wick at midnight."
    assert odt.title == "Lighthouse log"


def test_mail_subject_headers_body_and_attachments() -> None:
    attachment = files.pdf(["The attached report covers the eastern pier."], title="Report")
    parsed = extract(files.eml_file(("report.pdf", attachment)), file_types.EML, "m.eml", OPTIONS)
    mail = parsed.extracted
    assert mail.title == "Pier inspection results"
    assert mail.metadata["from"] == "Harbour Master <master@harbour.example>"
    assert mail.metadata["date"] == "2026-12-01T09:30:00+00:00"
    assert "cracks in the eastern granite pier" in mail.text
    assert [(a.filename, a.data) for a in parsed.attachments] == [("1-report.pdf", attachment)]


def test_text_in_any_encoding_with_crlf_and_bom() -> None:
    cases = {
        "latin-1": "Caf\xe9 cr\xe8me au port de p\xeache, d\xe9j\xe0 ferm\xe9 le dimanche.\r\n",
        "utf-16": "Smörgåsbord på kajen, öppet varje dag.\r\n",
        "cp1251": "Маяк работает каждую ночь до самого утра.\r\n",
    }
    for encoding, text in cases.items():
        parsed = extract(text.encode(encoding), file_types.PLAIN, "t.txt", OPTIONS).extracted
        assert parsed.text == text.replace("\r\n", "\n"), encoding
    bom = extract(b"\xef\xbb\xbf# Title\r\nbody", file_types.MARKDOWN, "a.md", OPTIONS).extracted
    assert bom.text == "# Title\nbody" and bom.title == "Title"
    page = b"<html><head><title>Ferry times</title></head><body><h1>Times</h1><p>Hourly.</p>"
    html = extract(page, file_types.HTML, "p.html", OPTIONS).extracted
    assert html.title == "Ferry times" and html.text == "# Times\n\nHourly."
    csv = extract(b"name;port\nAurora;North\n", file_types.CSV, "c.csv", OPTIONS).extracted
    assert csv.text == "name: Aurora; port: North"


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (files.pdf(encrypt="secret"), file_types.PDF, "encrypted"),
        (files.pdf()[:400], file_types.PDF, "cannot be opened"),
        (files.blank_pdf(30), file_types.PDF, "over the limit of 20"),
        (files.zip_bomb_docx(), file_types.DOCX, "decompression bomb"),
        (b"PK\x03\x04" + bytes(300), file_types.XLSX, "damaged"),
        (files.image(["x"])[:60], file_types.PNG, "cannot be read"),
    ],
)
def test_hostile_files_fail_with_a_reason(data: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        extract(data, content_type, "f", Options(max_pages=20))


def test_blank_pages_are_not_sent_to_ocr() -> None:
    parsed = extract(files.blank_pdf(200), file_types.PDF, "b.pdf", OPTIONS).extracted
    assert parsed.text == "" and parsed.metadata == {"pages": 200}


def test_ten_thousand_blank_pages_fail_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(ValueError, match="10000 pages, over the limit of 5000"):
        extract(files.blank_pdf(10_000), file_types.PDF, "b.pdf", OPTIONS)
    assert time.perf_counter() - started < 5


def test_an_untitled_pdf_is_titled_by_its_first_line() -> None:
    parsed = extract(files.pdf(title=None), file_types.PDF, "x.pdf", OPTIONS).extracted
    assert parsed.title == "Section 1"


def test_locations_of_chunks() -> None:
    builder = TextBuilder()
    builder.add("one", {"page": 1})
    builder.add("two", {"page": 2})
    built = builder.build()
    assert built.text == "one\n\ntwo" and locate(built.marks, 0, 9) == {"page": 1}
    assert locate(built.marks, 5, 9) == {"page": 2} and locate([], 0, 3) is None
    timed = [Mark(0, {"start_seconds": 0.0, "end_seconds": 2.5}),
             Mark(10, {"start_seconds": 2.5, "end_seconds": 4.0}),
             Mark(20, {"start_seconds": 4.0, "end_seconds": 7.0})]  # fmt: skip
    assert locate(timed, 3, 15) == {"start_seconds": 0.0, "end_seconds": 4.0}
    assert locate(timed, 12, 30) == {"start_seconds": 2.5, "end_seconds": 7.0}


def test_sniffing_never_expands_a_zip_member() -> None:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("mimetype", "w") as member,  # 64 MiB from about 64 KB
    ):
        for _ in range(64):
            member.write(bytes(1024 * 1024))
    data = out.getvalue()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert sniffed(data, "x.odt") == file_types.UNKNOWN
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 1024  # KiB


def test_text_that_expands_past_the_limit_fails() -> None:
    header = ",".join(f"column named at length {i} " + "x" * 1500 for i in range(50))
    table = (header + "\n" + "\n".join(",".join("1" * 50) for _ in range(400))).encode()
    with pytest.raises(ValueError, match="characters of text, over the limit"):
        extract(table, file_types.CSV, "t.csv", Options(max_chars=100_000))
    parsed = extract(table, file_types.CSV, "t.csv", OPTIONS).extracted
    assert len(parsed.text) < 50 * 400 * 100  # headers are cut short before they repeat


def test_a_forwarded_message_is_an_attachment() -> None:
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    forward = EmailMessage()
    forward["Subject"], forward["From"] = "Fwd: inspection", "clerk@harbour.example"
    forward.set_content("See the message below.")
    forward.add_attachment(message_from_bytes(files.eml_file(), policy=policy.default))
    parsed = extract(forward.as_bytes(), file_types.EML, "f.eml", OPTIONS)
    (attached,) = parsed.attachments
    assert attached.filename == "1-message-1.eml"
    assert sniffed(attached.data, attached.filename) == file_types.EML
