"""Real files of every format Groundwire reads, made here by the libraries that write them
(reportlab, python-docx, python-pptx, openpyxl, Pillow, the standard library), each holding
known text, so tests can check what parsing, titles and locations give back."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

import docx
import openpyxl
from PIL import Image, ImageDraw, ImageFont
from pptx import Presentation
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

PAGES = [
    "The harbour office opens at seven and closes when the last ferry is moored.",
    "Copper lanterns along the pier were replaced by the municipal workshop in May.",
    "Granite from the northern quarry paved the meadow road in the spring of 1904.",
]


def pdf(
    pages: list[str] = PAGES, title: str | None = "Harbour Handbook", **options: object
) -> bytes:
    """A PDF with a text layer: one page per string, under a heading naming the page."""
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, **options)
    if title:
        c.setTitle(title)
    for number, text in enumerate(pages, start=1):
        c.setFont("Helvetica-Bold", 14)
        c.drawString(72, 780, f"Section {number}")
        c.setFont("Helvetica", 11)
        c.drawString(72, 750, text)
        c.showPage()
    c.save()
    return out.getvalue()


def blank_pdf(pages: int) -> bytes:
    """A PDF of `pages` empty pages."""
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    for _ in range(pages):
        c.showPage()
    c.save()
    return out.getvalue()


def text_image(lines: list[str], size: tuple[int, int] = (1400, 400)) -> Image.Image:
    """Black text on white, large enough for OCR."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=40)
    for i, line in enumerate(lines):
        draw.text((50, 50 + i * 80), line, fill="black", font=font)
    return image


def image(lines: list[str], kind: str = "PNG") -> bytes:
    """An image file (PNG, JPEG, TIFF) of the lines."""
    out = io.BytesIO()
    text_image(lines).save(out, kind)
    return out.getvalue()


def scanned_pdf(pages: list[list[str]]) -> bytes:
    """A PDF of page images with no text layer, as a scanner makes."""
    images = [text_image(lines, (1654, 600)) for lines in pages]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()


def docx_file(title: str | None = "Ferry Timetable Notes") -> bytes:
    """A Word document: a heading, paragraphs, a list item and a table."""
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("Winter schedule", level=1)
    document.add_paragraph("The winter ferry leaves the harbour twice a day.")
    document.add_paragraph("Bring a lantern after dusk.", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(
        table.rows,
        [("Route", "Departure"), ("Island", "07:40"), ("Mainland", "16:15")],
        strict=True,
    ):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_file() -> bytes:
    """Three slides with titles and body text."""
    presentation = Presentation()
    layout = presentation.slide_layouts[1]
    for title, body in [
        ("Quarterly results", "Revenue from ferry tickets grew by nine percent."),
        ("Lantern programme", "Forty copper lanterns were restored this year."),
        ("Next steps", "The granite pier needs resurfacing before winter."),
    ]:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def xlsx_file() -> bytes:
    """A workbook with a header row and two data rows."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Inventory"
    sheet.append(["Item", "Quantity", "Location"])
    sheet.append(["copper lantern", 40, "north pier"])
    sheet.append(["granite slab", 12, "quarry yard"])
    workbook.properties.title = "Harbour inventory"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def odt_file() -> bytes:
    """A minimal OpenDocument text: a heading and a paragraph."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        "<office:body><office:text>"
        '<text:h text:outline-level="1">Lighthouse log</text:h>'
        "<text:p>The keeper trimmed the wick at<text:s/>midnight.</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def eml_file(attachment: tuple[str, bytes] | None = None) -> bytes:
    """A message with subject, sender, date and a plain body; optionally one attachment."""
    message = EmailMessage()
    message["Subject"] = "Pier inspection results"
    message["From"] = "Harbour Master <master@harbour.example>"
    message["To"] = "council@harbour.example"
    message["Date"] = "Tue, 01 Dec 2026 09:30:00 +0000"
    message["Message-ID"] = "<inspection-42@harbour.example>"
    message.set_content("The inspection found cracks in the eastern granite pier.\n")
    if attachment is not None:
        name, data = attachment
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


def zip_bomb_docx(expanded_mib: int = 160) -> bytes:
    """A DOCX-looking zip whose document.xml expands from well under 1 MiB to `expanded_mib`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(expanded_mib):
                member.write(block)
    return out.getvalue()


def wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    """A WAV file of a quiet tone (for a provider that is stood in for: it does not listen)."""
    import math
    import struct
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        frames = (
            int(2000 * math.sin(i * 2 * math.pi * 440 / rate)) for i in range(int(seconds * rate))
        )
        audio.writeframes(b"".join(struct.pack("<h", f) for f in frames))
    return out.getvalue()


def speech(text: str) -> bytes:
    """`text` spoken by espeak-ng (Debian's espeak-ng package), as WAV. Without it a test is
    skipped here, and fails in CI, which installs it (.ci/run)."""
    import os
    import shutil
    import subprocess

    import pytest

    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI"):
            raise RuntimeError("espeak-ng is missing: .ci/run installs it for this test")
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    spoken = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "120", "-g", "5", "--stdout", text],
        check=True,
        capture_output=True,
    )
    return spoken.stdout


def deflate_bomb_pdf(expanded_mib: int = 600) -> bytes:
    """A one-page PDF whose content stream inflates from under 1 MiB to `expanded_mib` MiB."""
    import zlib

    packer = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    stream = b"".join(packer.compress(block) for _ in range(expanded_mib)) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


# container format, codec, sample rate for each audio format the tests transcode into
AUDIO_FORMATS = {
    "mp3": ("mp3", "libmp3lame", 16_000),
    "m4a": ("ipod", "aac", 16_000),
    "ogg": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", 16_000),
}


def transcode(wav_bytes: bytes, suffix: str) -> bytes:
    """A WAV recording re-encoded as MP3, M4A, OGG (Opus) or FLAC with PyAV (FFmpeg)."""
    import av
    from av.audio.resampler import AudioResampler
    from av.audio.stream import AudioStream

    container, codec, rate = AUDIO_FORMATS[suffix]
    out = io.BytesIO()
    resampler = AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(io.BytesIO(wav_bytes), "r") as source, av.open(out, "w", container) as target:
        stream = target.add_stream(codec, rate=rate)
        assert isinstance(stream, AudioStream)
        stream.layout = "mono"
        for frame in source.decode(audio=0):
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()
