"""Accepting uploaded files: check the form, tell each file's format, keep its bytes and upsert
its document, all in the caller's transaction. Never commits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from services import originals
from services.access.schemas import Principal
from services.api.errors import ApiError
from services.api.validation import json_problem, json_size, text_problem
from services.config import Settings
from services.documents import Accepted, Incoming, accept
from services.file_types import SUPPORTED, UNKNOWN, sniff
from services.files.upload import ReceivedFile, Upload
from services.ingest.service import id_problem
from services.models import Collection

_PRINCIPALS = TypeAdapter(list[Principal])
MAX_ID_CHARS = 512
# What Groundwire writes into every uploaded file's metadata (over the client's keys).
FILE_KEYS = ("filename", "content_type", "bytes", "sha256")


@dataclass(frozen=True)
class FileForm:
    """The form fields that apply to the request's files."""

    metadata: dict[str, Any]
    access: list[str] | None
    id: str | None


def read_form(upload: Upload, settings: Settings) -> FileForm:
    """Checks the optional `metadata`, `access` and `id` fields; ApiError on the first fault."""
    metadata: Any = {}
    if "metadata" in upload.fields:
        metadata = _json(upload.fields["metadata"], "metadata")
        if not isinstance(metadata, dict):
            raise ApiError(422, "invalid_metadata", "metadata must be a JSON object")
        problem = json_problem(metadata)
        if problem:
            raise ApiError(422, "invalid_metadata", f"metadata {problem}")
        if json_size(metadata) > settings.max_metadata_bytes:
            raise ApiError(
                413,
                "metadata_too_large",
                f"metadata is over the limit of {settings.max_metadata_bytes} bytes",
            )
    access: list[str] | None = None
    if "access" in upload.fields:
        try:
            access = list(_PRINCIPALS.validate_python(_json(upload.fields["access"], "access")))
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ApiError(
                422, "invalid_access", f"access{f'[{where}]' if where else ''}: {first['msg']}"
            ) from None
    document_id = upload.fields.get("id")
    if document_id is not None:
        if len(upload.files) != 1:
            raise ApiError(422, "invalid_id", "'id' names one file: send one file with it")
        check_id(document_id, "id")
    return FileForm(metadata, access, document_id)


def check_id(document_id: str, where: str) -> None:
    """Raises ApiError 422 for an id the documents API would refuse."""
    problem = text_problem(document_id)
    if problem:
        raise ApiError(422, "invalid_text", f"{where} {problem}")
    if not 1 <= len(document_id) <= MAX_ID_CHARS:
        raise ApiError(422, "invalid_id", f"{where} must be 1 to {MAX_ID_CHARS} characters")
    problem = id_problem(document_id)
    if problem:
        raise ApiError(422, "invalid_id", f"{where}: {problem}")


def _json(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", f"the form field {name!r} is not valid JSON") from None


def content_type_of(received: ReceivedFile) -> str:
    """The file's format, from its bytes (and, for text formats, its name)."""
    return sniff(received.head, received.name, received.spool)  # type: ignore[arg-type]


def accept_files(
    session: Session, collection: Collection, upload: Upload, form: FileForm
) -> Accepted:
    """Keeps each file's bytes and upserts its document (queued, or `unchanged`)."""
    checked: list[tuple[ReceivedFile, str, str]] = []  # file, id, format, in request order
    seen: set[str] = set()
    for received in upload.files:
        document_id = form.id or received.filename
        check_id(document_id, f"file {received.filename!r}: id")
        if document_id in seen:
            raise ApiError(
                422, "duplicate_id", f"two files of this request have the id {document_id!r}"
            )
        seen.add(document_id)
        if received.size == 0:
            raise ApiError(422, "empty_file", f"{received.filename!r} is empty")
        kind = content_type_of(received)
        if kind == UNKNOWN or kind not in SUPPORTED:
            raise ApiError(
                415,
                "unsupported_file",
                f"{received.filename!r} is not a format Groundwire reads (PDF, DOCX, PPTX,"
                " XLSX, ODT, CSV, e-mail, HTML, Markdown, text, PNG/JPEG/TIFF images, audio)",
            )
        checked.append((received, document_id, kind))
    # Originals are locked in one order (by content), so two uploads of the same files in
    # different orders cannot deadlock.
    kept: dict[bytes, int] = {}
    for received in sorted({r.sha256: r for r, _, _ in checked}.values(), key=lambda r: r.sha256):
        kept[received.sha256] = originals.keep(
            session, collection.workspace_id, received.sha256, received.size, received.spool
        )
    incoming = [
        Incoming.file(
            document_id,
            received.name,
            kind,
            received.size,
            received.sha256,
            kept[received.sha256],
            form.access,
            form.metadata,
        )
        for received, document_id, kind in checked
    ]
    return accept(session, collection.id, incoming)
