"""Parsing uploaded files by their content type into text, title, metadata and locations.

`extract` is a pure function of the bytes (audio aside, which a model transcribes); the worker
runs it in its parser process, under a time and memory limit (workers/parse_process.py).
Each format's module names the library it uses. Every failure a file can cause is a
ValueError with a reason a person can act on.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

from services import file_types
from workers.formats.audio import transcribe
from workers.formats.extracted import Extracted, ProviderBusy
from workers.formats.images import extract_image
from workers.formats.mail import Attachment, parse_mail
from workers.formats.office import extract_docx, extract_odt, extract_pptx, extract_xlsx
from workers.formats.pdf import extract_pdf
from workers.formats.text import extract_text


@dataclass(frozen=True)
class Options:
    """How files are parsed (from Settings)."""

    max_pages: int = 5000
    max_chars: int = 50_000_000
    ocr: bool = True
    transcribe_model: str = "whisper-1"
    # The provider that transcribes audio (OpenAI, or any compatible server).
    openai_base_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_timeout_s: float = 600.0
    local_threads: int = 1  # threads of the offline transcription model


@dataclass
class Parsed:
    """What a file gave: its text and the files it holds (a message's attachments)."""

    extracted: Extracted
    attachments: list[Attachment] = field(default_factory=list)


def extract(data: bytes, content_type: str, filename: str, options: Options) -> Parsed:
    """Parses a file's bytes as `content_type`; ValueError with the reason when it cannot."""
    try:
        parsed = _extract(data, content_type, filename, options)
    except (ValueError, ProviderBusy):
        raise
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"the {content_type} file is damaged ({error})") from None
    except MemoryError:
        raise ValueError("parsing the file ran out of memory") from None
    except RecursionError:
        raise ValueError("the file is nested too deeply to parse") from None
    except Exception as error:  # a library's own complaint about a malformed file
        raise ValueError(f"the {content_type} file cannot be parsed: {error}") from None
    size = len(parsed.extracted.text)
    if size > options.max_chars:
        raise ValueError(
            f"the file gives {size:,} characters of text, over the limit of"
            f" {options.max_chars:,} (GROUNDWIRE_MAX_PARSED_CHARS)"
        )
    return parsed


def _extract(data: bytes, content_type: str, filename: str, options: Options) -> Parsed:
    if content_type == file_types.PDF:
        return Parsed(extract_pdf(data, options.max_pages, options.ocr))
    if content_type == file_types.DOCX:
        return Parsed(extract_docx(data))
    if content_type == file_types.PPTX:
        return Parsed(extract_pptx(data, options.max_pages))
    if content_type == file_types.XLSX:
        return Parsed(extract_xlsx(data, options.max_pages))
    if content_type == file_types.ODT:
        return Parsed(extract_odt(data))
    if content_type == file_types.EML:
        extracted, attachments = parse_mail(data)
        return Parsed(extracted, attachments)
    if content_type in file_types.IMAGES:
        return Parsed(extract_image(data, options.max_pages, options.ocr))
    if content_type in file_types.AUDIO:
        return Parsed(transcribe(data, filename, options))
    if content_type in file_types.TEXTS:
        return Parsed(extract_text(data, content_type))
    raise ValueError(f"{content_type} is not a format Groundwire reads")
