"""The parse stage's part for uploaded files: read the original, parse it in the parser
process, and write what parsing found onto the document (fenced by version and lease owner),
so the document browser, a re-chunking and a byte-identical upload all find it there. The
client's own metadata keys win over what parsing found."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services import originals
from services.config import Settings
from services.db import Database
from workers.claims import Claimed
from workers.formats import Options, Parsed, extract
from workers.parse_process import ParseProcess

_RECORD = text(
    """
    UPDATE documents
    SET content = :content, title = :title, parsed = CAST(:parsed AS jsonb),
        metadata = CAST(:metadata AS jsonb) || metadata
    WHERE id = :id AND version = :version AND lease_owner = :owner
    """
)


@dataclass(frozen=True)
class ParsedFile:
    """A claimed file's text, title and metadata, to write with its chunks."""

    id: int
    version: int
    text: str
    title: str
    metadata: dict[str, Any]


def options(settings: Settings) -> Options:
    """How files are parsed, from the settings."""
    key = settings.openai_api_key
    return Options(
        max_pages=settings.max_pages,
        max_chars=settings.max_parsed_chars,
        ocr=settings.ocr,
        transcribe_model=settings.transcribe_model,
        openai_base_url=settings.openai_base_url,
        openai_api_key=key.get_secret_value() if key is not None else None,
        openai_timeout_s=max(settings.openai_timeout_s, settings.parse_timeout_s),
        local_threads=settings.local_threads,
    )


def parse_file(
    database: Database, doc: Claimed, parser: ParseProcess | None, settings: Settings
) -> Parsed:
    """Reads the document's original and parses it (in `parser`'s process when given)."""
    assert doc.original_id is not None
    buffer = io.BytesIO()
    with database.scope() as session:
        originals.read_into(session, doc.original_id, buffer)
    data = buffer.getvalue()
    del buffer
    if parser is not None:
        return parser.parse_file(data, doc.content_type, doc.filename, options(settings))
    return extract(data, doc.content_type, doc.filename, options(settings))


def record(session: Session, files: list[ParsedFile], owner: Any) -> None:
    """Writes each file's parsed text, title and metadata onto its still-owned document."""
    for parsed in files:
        session.execute(
            _RECORD,
            {
                "content": parsed.text,
                "title": parsed.title,
                "parsed": json.dumps({"title": parsed.title, "metadata": parsed.metadata}),
                "metadata": json.dumps(parsed.metadata),
                "id": parsed.id,
                "version": parsed.version,
                "owner": owner,
            },
        )
