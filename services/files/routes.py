"""HTTP routes for uploaded files: upload (multipart, streamed to disk then to the database)
and download of a document's original bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from services import originals
from services.api.deps import CollectionDep, Reader, RuntimeDep, SessionDep, Writer
from services.api.errors import ApiError, error_responses
from services.api.ratelimit import IngestLimit
from services.files.service import accept_files, read_form
from services.files.upload import receive_upload
from services.ingest import service as documents
from services.ingest.schemas import IngestResponse
from services.runtime import Runtime

_UPLOAD_PATH = re.compile(r"/v1/collections/[^/]+/files/?")


def is_file_upload(scope: Scope) -> bool:
    """Whether a request is an upload, whose body this route reads as it streams."""
    return (
        scope.get("method") == "POST" and _UPLOAD_PATH.fullmatch(scope.get("path", "")) is not None
    )


router = APIRouter(
    tags=["files"], responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503)
)

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one part per file, each with its filename",
                        },
                        "metadata": {
                            "type": "string",
                            "description": "a JSON object, for every file of the request",
                        },
                        "access": {
                            "type": "string",
                            "description": "a JSON array of principals, as for documents",
                        },
                        "id": {
                            "type": "string",
                            "description": "the document id (one file only); default: filename",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/v1/collections/{name}/files",
    status_code=202,
    response_model=IngestResponse,
    openapi_extra=UPLOAD_BODY,
)
async def upload_files(
    caller: Writer,
    _: IngestLimit,
    collection: CollectionDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> IngestResponse:
    """Accepts files as multipart/form-data parts named `file`: keeps their bytes, then queues
    them for parsing by content (PDF, Office, e-mail, images, audio, text); answers 202."""
    # No transaction, and no pooled connection, waits on a client's upload (the session is
    # used again once the body is in; expire_on_commit=False keeps `collection` loaded).
    await run_in_threadpool(session.commit)
    upload = await receive_upload(
        request.headers.get("content-type", ""),
        request.stream(),
        runtime.settings.max_file_bytes,
        runtime.settings.max_upload_bytes,
    )
    try:
        form = read_form(upload, runtime.settings)

        def store() -> IngestResponse:
            accepted = accept_files(session, collection, upload, form)
            embedder = runtime.embedders.get(collection.embedder, collection.dimensions)
            session.commit()
            request.state.audit_documents = [d.id for d in accepted.documents]
            per_task = min(embedder.documents_per_task, runtime.settings.files_per_task())
            runtime.broker.enqueue(accepted.to_enqueue, accepted.sizes, per_task)
            return IngestResponse.of(accepted)

        return await run_in_threadpool(store)
    finally:
        upload.close()


@router.get(
    "/v1/collections/{name}/documents/{document_id:path}/original",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_original(
    caller: Reader,
    collection: CollectionDep,
    document_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
) -> StreamingResponse:
    """The bytes of an uploaded file as they came, with their content type and filename."""
    principals = documents.readable_by(caller)
    document = documents.get_document(session, collection, document_id, principals)
    if document.original_id is None:
        raise ApiError(
            404, "no_original", f"document {document_id!r} was sent as text, not as a file"
        )
    metadata = document.metadata_
    filename = str(metadata.get("filename") or document.external_id.rsplit("/", 1)[-1])
    size = metadata.get("bytes")
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
    }
    if isinstance(size, int):
        headers["Content-Length"] = str(size)
    original_id = document.original_id
    session.commit()  # the request's connection goes back to the pool before the bytes go out
    return StreamingResponse(
        _stream(runtime, original_id),
        media_type=document.content_type,
        headers=headers,
    )


def _stream(runtime: Runtime, original_id: int) -> Iterator[bytes]:
    """The original's parts, each read in a short transaction of its own (a slow reader holds
    no connection and no snapshot). Deleted meanwhile, the download stops short of its
    Content-Length, which a client sees as an error, never as a whole file."""
    part = 0
    while True:
        with runtime.database.scope() as session:
            data = originals.read_part(session, original_id, part)
        if data is None:
            return
        yield data
        part += 1
