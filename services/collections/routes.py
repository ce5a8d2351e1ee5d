"""HTTP routes for collections."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.api.deps import Admin, CollectionDep, Reader, RerankDep, RuntimeDep, SessionDep
from services.api.errors import error_responses
from services.api.queues import STAGE_STATUS, waiting
from services.collections import service
from services.collections.schemas import (
    BulkLoad,
    BulkLoadOut,
    CollectionCreate,
    CollectionDetail,
    CollectionList,
    CollectionOut,
    CollectionUpdate,
    IngestLimits,
    StageWaiting,
)
from services.ingest.schemas import MAX_DOCUMENTS_PER_REQUEST
from services.rerank.service import not_configured

router = APIRouter(
    prefix="/v1/collections",
    tags=["collections"],
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
)


@router.post("", status_code=201, response_model=CollectionOut)
def create_collection(
    caller: Admin, body: CollectionCreate, session: SessionDep, runtime: RuntimeDep
) -> CollectionOut:
    """Creates a collection with its embedder, chunking settings and relevance threshold."""
    collection = service.create_collection(session, runtime, caller, body)
    session.commit()
    return CollectionOut.model_validate(collection, from_attributes=True)


@router.get("", response_model=CollectionList)
def list_collections(caller: Reader, session: SessionDep) -> CollectionList:
    """Lists the collections the key can reach."""
    return CollectionList(
        collections=[
            CollectionOut.model_validate(c, from_attributes=True)
            for c in service.list_collections(session, caller)
        ]
    )


@router.get("/{name}", response_model=CollectionDetail)
def get_collection(
    caller: Reader, collection: CollectionDep, session: SessionDep, runtime: RuntimeDep
) -> CollectionDetail:
    """Shows a collection with document counts by status, its chunk count and its limits."""
    counts, chunks = service.collection_counts(session, collection)
    base = CollectionOut.model_validate(collection, from_attributes=True)
    settings = runtime.settings
    limits = IngestLimits(
        max_document_bytes=settings.max_document_bytes,
        max_body_bytes=settings.max_body_bytes,
        max_metadata_bytes=settings.max_metadata_bytes,
        max_documents_per_request=MAX_DOCUMENTS_PER_REQUEST,
    )
    pending = waiting(session, collection.id)
    stages = [
        StageWaiting(stage=stage, documents=n, oldest_age_seconds=age)
        for stage, status in STAGE_STATUS.items()
        for n, age in [pending.get(status, (0, None))]
    ]
    return CollectionDetail(
        **base.model_dump(),
        documents=counts,
        chunks=chunks,
        limits=limits,
        size_bytes=service.collection_size(session, collection),
        stages=stages,
    )


@router.patch("/{name}", response_model=CollectionOut)
def update_collection(
    caller: Admin,
    collection: CollectionDep,
    body: CollectionUpdate,
    session: SessionDep,
    reranker: RerankDep,
    runtime: RuntimeDep,
) -> CollectionOut:
    """Changes a collection's relevance threshold (e.g. one calibrated by `groundwire eval`),
    the chat model, prompt and no-context sentence of its answers, or whether it reranks."""
    if body.rerank and reranker is None:
        raise not_configured()
    for field in body.model_fields_set:
        setattr(collection, field, getattr(body, field))
    session.commit()
    runtime.wrote([collection.id])
    return CollectionOut.model_validate(collection, from_attributes=True)


@router.put("/{name}/bulk-load", response_model=BulkLoadOut)
def bulk_load(
    caller: Admin,
    collection: CollectionDep,
    body: BulkLoad,
    session: SessionDep,
    runtime: RuntimeDep,
) -> BulkLoadOut:
    """Enters bulk-load mode (indexes and text search deferred) or leaves it (builds them)."""
    if body.enabled:
        service.enter_bulk_load(session, collection)
        session.commit()
        return BulkLoadOut(bulk_load=True)
    session.rollback()  # the request's transaction holds no lock while the service works
    finished = service.finish_bulk_load(runtime.database, collection.id)
    return BulkLoadOut(
        bulk_load=False,
        index_build_seconds=finished.index_build_seconds,
        text_search_seconds=finished.text_search_seconds,
        text_vectors_computed=finished.text_vectors_computed,
    )


@router.delete("/{name}", status_code=204, response_class=Response)
def delete_collection(caller: Admin, collection: CollectionDep, session: SessionDep) -> Response:
    """Deletes a collection with all its documents and chunks."""
    service.delete_collection(session, collection)
    session.commit()
    return Response(status_code=204)
