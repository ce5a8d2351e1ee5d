"""HTTP routes for documents and batches."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from services.collections.service import get_collection
from services.config import get_settings
from services.deps import get_session
from services.errors import ApiError
from services.ingest import service
from services.ingest.enqueue import documents_per_task, enqueue
from services.ingest.schemas import (
    AcceptedDocument,
    BatchOut,
    DocumentList,
    DocumentOut,
    IngestRequest,
    IngestResponse,
    RetryRequest,
    RetryResponse,
)
from services.models import QUEUED

router = APIRouter(tags=["documents"])


@router.post("/v1/collections/{name}/documents", status_code=202, response_model=IngestResponse)
def ingest_documents(
    name: str, body: IngestRequest, session: Session = Depends(get_session)
) -> object:
    """Accepts 1-1,000 documents: commits them, then enqueues their ids; answers 202."""
    collection = get_collection(session, name)
    service.validate_documents(body.documents, get_settings())
    accepted = service.accept_documents(session, collection, body.documents)
    session.commit()
    enqueue(accepted.to_enqueue, accepted.sizes, documents_per_task(collection.embedder))
    return IngestResponse(batch_id=accepted.batch_id, documents=accepted.documents)


@router.get("/v1/collections/{name}/documents", response_model=DocumentList)
def list_documents(
    name: str,
    status: Literal["queued", "processing", "done", "failed"] | None = None,
    after: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    session: Session = Depends(get_session),
) -> object:
    """Lists documents by client id, e.g. `?status=failed` for the dead letters with reasons."""
    collection = get_collection(session, name)
    rows, cursor = service.list_documents(session, collection, status, after, limit)
    return DocumentList(documents=[service.document_out(d) for d in rows], next=cursor)


@router.post(
    "/v1/collections/{name}/documents/retry", status_code=202, response_model=RetryResponse
)
def retry_documents(
    name: str, body: RetryRequest, session: Session = Depends(get_session)
) -> object:
    """Queues failed documents again: the listed ids, or up to 1,000 failed ones."""
    collection = get_collection(session, name)
    retried = service.retry_failed(session, collection, body.ids)
    session.commit()
    enqueue([(doc_id, version) for doc_id, version, _ in retried])
    return RetryResponse(
        retried=len(retried),
        documents=[
            AcceptedDocument(id=ext, status=QUEUED, version=version) for _, version, ext in retried
        ],
    )


@router.post(
    "/v1/collections/{name}/documents/{document_id}/retry",
    status_code=202,
    response_model=AcceptedDocument,
)
def retry_document(name: str, document_id: str, session: Session = Depends(get_session)) -> object:
    """Queues one failed document again; 409 if it has not failed."""
    collection = get_collection(session, name)
    document = service.get_document(session, collection, document_id)
    retried = service.retry_failed(session, collection, [document.external_id])
    if not retried:
        raise ApiError(409, "not_failed", f"document {document_id!r} is {document.status}")
    session.commit()
    enqueue([(doc_id, version) for doc_id, version, _ in retried])
    return AcceptedDocument(id=document_id, status=QUEUED, version=retried[0][1])


@router.get("/v1/collections/{name}/documents/{document_id}", response_model=DocumentOut)
def get_document(name: str, document_id: str, session: Session = Depends(get_session)) -> object:
    """Shows a document's status, version, chunk count, error and timestamps."""
    collection = get_collection(session, name)
    return service.document_out(service.get_document(session, collection, document_id))


@router.delete("/v1/collections/{name}/documents/{document_id}", status_code=204)
def delete_document(
    name: str, document_id: str, session: Session = Depends(get_session)
) -> Response:
    """Deletes a document; once this returns, no query returns its chunks."""
    collection = get_collection(session, name)
    service.delete_document(session, service.get_document(session, collection, document_id))
    session.commit()
    return Response(status_code=204)


@router.get("/v1/batches/{batch_id}", response_model=BatchOut)
def get_batch(batch_id: uuid.UUID, session: Session = Depends(get_session)) -> object:
    """Shows how many of a batch's documents are queued, processing, done or failed."""
    return service.batch_progress(session, batch_id)
