"""HTTP routes for collections."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from services.collections import service
from services.collections.schemas import (
    BulkLoad,
    BulkLoadOut,
    CollectionCreate,
    CollectionDetail,
    CollectionList,
    CollectionOut,
    CollectionUpdate,
)
from services.deps import get_session

router = APIRouter(prefix="/v1/collections", tags=["collections"])


@router.post("", status_code=201, response_model=CollectionOut)
def create_collection(body: CollectionCreate, session: Session = Depends(get_session)) -> object:
    """Creates a collection with its embedder, chunking settings and relevance threshold."""
    collection = service.create_collection(session, body)
    session.commit()
    return CollectionOut.model_validate(collection, from_attributes=True)


@router.get("", response_model=CollectionList)
def list_collections(session: Session = Depends(get_session)) -> object:
    """Lists every collection."""
    return CollectionList(
        collections=[
            CollectionOut.model_validate(c, from_attributes=True)
            for c in service.list_collections(session)
        ]
    )


@router.get("/{name}", response_model=CollectionDetail)
def get_collection(name: str, session: Session = Depends(get_session)) -> object:
    """Shows a collection with document counts by status and its chunk count."""
    collection = service.get_collection(session, name)
    counts, chunks = service.collection_counts(session, collection)
    base = CollectionOut.model_validate(collection, from_attributes=True)
    return CollectionDetail(**base.model_dump(), documents=counts, chunks=chunks)


@router.patch("/{name}", response_model=CollectionOut)
def update_collection(
    name: str, body: CollectionUpdate, session: Session = Depends(get_session)
) -> object:
    """Changes a collection's relevance threshold (e.g. one calibrated by `groundwire eval`)."""
    collection = service.get_collection(session, name)
    collection.threshold = body.threshold
    session.commit()
    return CollectionOut.model_validate(collection, from_attributes=True)


@router.put("/{name}/bulk-load", response_model=BulkLoadOut)
def bulk_load(name: str, body: BulkLoad, session: Session = Depends(get_session)) -> object:
    """Enters bulk-load mode (indexes and text search deferred) or leaves it (builds them)."""
    collection = service.get_collection(session, name)
    if body.enabled:
        service.enter_bulk_load(session, collection)
        session.commit()
        return BulkLoadOut(bulk_load=True)
    vectors, fill_seconds = service.leave_bulk_load(session, collection)
    session.commit()
    if vectors:
        started = time.perf_counter()
        service.vacuum_chunks()
        fill_seconds += time.perf_counter() - started
    text_index_seconds, index_seconds = service.build_indexes(session, collection)
    session.commit()
    return BulkLoadOut(
        bulk_load=False,
        index_build_seconds=index_seconds,
        text_search_seconds=fill_seconds + text_index_seconds,
        text_vectors_computed=vectors,
    )


@router.delete("/{name}", status_code=204)
def delete_collection(name: str, session: Session = Depends(get_session)) -> Response:
    """Deletes a collection with all its documents and chunks."""
    service.delete_collection(session, service.get_collection(session, name))
    session.commit()
    return Response(status_code=204)
