"""HTTP routes for documents and batches."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.api.deps import CollectionDep, Reader, RuntimeDep, SessionDep, Writer
from services.api.errors import ApiError, error_responses
from services.api.json_body import json_body, json_body_schema
from services.api.ratelimit import IngestLimit
from services.ingest import service
from services.ingest.schemas import (
    AcceptedDocument,
    BatchList,
    BatchOut,
    DocumentList,
    DocumentOut,
    IngestRequest,
    IngestResponse,
    RetryRequest,
    RetryResponse,
)
from services.statuses import Acceptance, DocumentStatus

router = APIRouter(
    tags=["documents"], responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
)


@router.post(
    "/v1/collections/{name}/documents",
    status_code=202,
    response_model=IngestResponse,
    responses=error_responses(415),
    openapi_extra=json_body_schema(IngestRequest),
)
def ingest_documents(
    caller: Writer,
    _: IngestLimit,
    collection: CollectionDep,
    body: Annotated[IngestRequest, Depends(json_body(IngestRequest))],
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> IngestResponse:
    """Accepts 1-1,000 documents: commits them, then enqueues their ids; answers 202."""
    service.validate_documents(body.documents, runtime.settings)
    accepted = service.accept_documents(session, collection, body.documents)
    embedder = runtime.embedders.get(collection.embedder, collection.dimensions)
    session.commit()
    runtime.wrote([collection.id])  # an access list changed on its own reaches the chunks now
    request.state.audit_documents = [d.id for d in accepted.documents]
    runtime.broker.enqueue(accepted.to_enqueue, accepted.sizes, embedder.documents_per_task)
    return IngestResponse.of(accepted)


@router.get("/v1/collections/{name}/documents", response_model=DocumentList)
def list_documents(
    caller: Reader,
    collection: CollectionDep,
    session: SessionDep,
    status: DocumentStatus | None = None,
    after: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> DocumentList:
    """Lists documents by client id, e.g. `?status=failed` for the dead letters with reasons."""
    principals = service.readable_by(caller)
    rows, cursor = service.list_documents(session, collection, status, after, limit, principals)
    return DocumentList(documents=[service.document_out(d) for d in rows], next=cursor)


@router.post(
    "/v1/collections/{name}/documents/retry", status_code=202, response_model=RetryResponse
)
def retry_documents(
    caller: Writer,
    _: IngestLimit,
    collection: CollectionDep,
    body: RetryRequest,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
) -> RetryResponse:
    """Queues failed documents again: the listed ids, or up to 1,000 failed ones."""
    retried = service.retry_failed(session, collection, body.ids)
    session.commit()
    request.state.audit_documents = [ext for _, _, ext in retried]
    runtime.broker.enqueue([(doc_id, version) for doc_id, version, _ in retried])
    return RetryResponse(
        retried=len(retried),
        documents=[
            AcceptedDocument(id=ext, status=Acceptance.QUEUED, version=version)
            for _, version, ext in retried
        ],
    )


@router.post(
    "/v1/collections/{name}/documents/{document_id:path}/retry",
    status_code=202,
    response_model=AcceptedDocument,
)
def retry_document(
    caller: Writer,
    _: IngestLimit,
    collection: CollectionDep,
    document_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AcceptedDocument:
    """Queues one failed document again; 409 if it has not failed."""
    document = service.get_document(session, collection, document_id)
    retried = service.retry_failed(session, collection, [document.external_id])
    if not retried:
        raise ApiError(409, "not_failed", f"document {document_id!r} is {document.status}")
    session.commit()
    runtime.broker.enqueue([(doc_id, version) for doc_id, version, _ in retried])
    return AcceptedDocument(id=document_id, status=Acceptance.QUEUED, version=retried[0][1])


@router.get("/v1/collections/{name}/documents/{document_id:path}", response_model=DocumentOut)
def get_document(
    caller: Reader, collection: CollectionDep, document_id: str, session: SessionDep
) -> DocumentOut:
    """Shows a document's status, version, chunk count, error and timestamps."""
    principals = service.readable_by(caller)
    return service.document_out(service.get_document(session, collection, document_id, principals))


@router.delete(
    "/v1/collections/{name}/documents/{document_id:path}", status_code=204, response_class=Response
)
def delete_document(
    caller: Writer,
    collection: CollectionDep,
    document_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """Deletes a document; once this returns, no query returns its chunks."""
    service.delete_document(session, service.get_document(session, collection, document_id))
    session.commit()
    runtime.wrote([collection.id])
    return Response(status_code=204)


@router.get("/v1/collections/{name}/batches", response_model=BatchList)
def list_batches(
    caller: Reader,
    collection: CollectionDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> BatchList:
    """The collection's most recent batches, newest first, each with its progress."""
    return BatchList(batches=service.recent_batches(session, caller, collection, limit))


@router.get("/v1/batches/{batch_id}", response_model=BatchOut)
def get_batch(caller: Reader, batch_id: uuid.UUID, session: SessionDep) -> BatchOut:
    """Shows how many of a batch's documents are queued, processing, done or failed."""
    return service.batch_progress(session, caller, batch_id)
