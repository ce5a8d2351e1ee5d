"""HTTP routes for documents and batches."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from services.collections.service import get_collection
from services.config import get_settings
from services.deps import get_session
from services.ingest import service
from services.ingest.enqueue import enqueue
from services.ingest.schemas import BatchOut, DocumentOut, IngestRequest, IngestResponse

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
    enqueue(accepted.to_enqueue)
    return IngestResponse(batch_id=accepted.batch_id, documents=accepted.documents)


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
