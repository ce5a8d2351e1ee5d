"""Accepting documents: validate, upsert by client id, record the batch. Never commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, Text, case, cast, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from services.access.caller import Caller, Scope
from services.api.errors import ApiError
from services.api.validation import json_problem, json_size, text_problem
from services.config import Settings
from services.documents import Accepted, Incoming, accept, content_hash, delete_with_attachments
from services.ingest.schemas import BatchOut, DocumentIn, DocumentOut
from services.models import BatchItem, Collection, Document, IngestBatch
from services.statuses import PENDING, Acceptance, DocumentStatus

TEXTS = ARRAY(Text)
DOT_SEGMENTS = frozenset({".", ".."})


def id_problem(document_id: str) -> str | None:
    """Why no URL could name a document with this id, or None (the id grammar, README)."""
    parts = document_id.split("/")
    if DOT_SEGMENTS & set(parts):
        return (
            "no '/'-separated part of an id may be '.' or '..' (clients and proxies normalise"
            " them out of URLs, so the id could not be fetched)"
        )
    if len(parts) > 1 and parts[-1] == "original":
        return (
            "an id may not end in '/original': …/documents/<id>/original downloads the"
            " original file of document <id>"
        )
    return None


def validate_documents(documents: list[DocumentIn], settings: Settings) -> None:
    """Raises ApiError for the first document that cannot be stored faithfully."""
    seen: set[str] = set()
    for i, doc in enumerate(documents):
        where = f"documents[{i}]" + (
            f" (id {doc.id!r})" if doc.id and not text_problem(doc.id) else ""
        )
        size = len(doc.text.encode("utf-8", "surrogatepass"))
        if size > settings.max_document_bytes:
            raise ApiError(
                413,
                "document_too_large",
                f"{where}: text is {size} bytes, over the limit of {settings.max_document_bytes}",
            )
        if not doc.text.strip():
            raise ApiError(422, "empty_document", f"{where}: text is empty")
        for field in ("id", "text", "title", "source"):
            value = getattr(doc, field)
            problem = text_problem(value) if value is not None else None
            if problem:
                raise ApiError(422, "invalid_text", f"{where}: {field} {problem}")
        problem = json_problem(doc.metadata)
        if problem:
            raise ApiError(422, "invalid_metadata", f"{where}: metadata {problem}")
        if json_size(doc.metadata) > settings.max_metadata_bytes:
            raise ApiError(
                413,
                "metadata_too_large",
                f"{where}: metadata is over the limit of {settings.max_metadata_bytes} bytes",
            )
        problem = id_problem(doc.id) if doc.id is not None else None
        if problem:
            raise ApiError(422, "invalid_id", f"{where}: {problem}")
        if doc.id is not None:
            if doc.id in seen:
                raise ApiError(422, "duplicate_id", f"{where}: id appears twice in this request")
            seen.add(doc.id)


def accept_documents(
    session: Session, collection: Collection, documents: list[DocumentIn]
) -> Accepted:
    """Upserts documents of the documents API (see `services.documents.accept`)."""
    return accept(session, collection.id, [incoming(doc) for doc in documents])


def incoming(doc: DocumentIn) -> Incoming:
    """A document of the documents API, to accept."""
    return Incoming(
        external_id=doc.id or uuid.uuid4().hex,
        title=doc.title,
        source=doc.source,
        metadata=doc.metadata,
        access=doc.access,
        content=doc.text,
        content_type=doc.content_type,
        content_hash=content_hash(doc.text, doc.content_type),
        size=len(doc.text),
    )


def readable_by(caller: Caller) -> tuple[str, ...] | None:
    """The principals whose documents a caller may see when managing documents: writers see
    every document of their collections (None), readers those their principals may read."""
    return None if caller.has(Scope.WRITE) else caller.principals


def _visible(query: Select[Any], principals: tuple[str, ...] | None) -> Select[Any]:
    if principals is None:
        return query
    return query.where(
        or_(Document.access.is_(None), Document.access.overlap(cast(list(principals), TEXTS)))
    )


def get_document(
    session: Session,
    collection: Collection,
    external_id: str,
    principals: tuple[str, ...] | None = None,
) -> Document:
    """Returns the document with the client id, or raises a 404 ApiError (also for one the
    principals may not read, when they are given, and for an id no document can have)."""
    document = (
        None
        if text_problem(external_id)
        else session.scalar(
            _visible(
                select(Document).where(
                    Document.collection_id == collection.id, Document.external_id == external_id
                ),
                principals,
            )
        )
    )
    if document is None:
        raise ApiError(
            404, "document_not_found", f"no document {external_id!r} in {collection.name!r}"
        )
    return document


def document_out(document: Document) -> DocumentOut:
    """Shapes a document row for the API."""
    return DocumentOut(
        id=document.external_id,
        status=document.status,
        version=document.version,
        indexed_version=document.indexed_version,
        chunks=document.chunk_count,
        tokens=document.token_count,
        attempts=document.attempts,
        embedded_chunks=document.embedded_chunks,
        cached_chunks=document.cached_chunks,
        embedded_tokens=document.embedded_tokens,
        error=document.error,
        error_class=document.error_class,
        title=document.title,
        source=document.source,
        content_type=document.content_type,
        metadata=document.metadata_,
        access=document.access,
        created_at=document.created_at,
        accepted_at=document.accepted_at,
        started_at=document.started_at,
        embedded_at=document.embedded_at,
        finished_at=document.finished_at,
    )


def batch_progress(session: Session, caller: Caller, batch_id: uuid.UUID) -> BatchOut:
    """Counts the batch's documents by their current status: a batch of a collection the
    caller cannot reach is answered as if absent."""
    batch = session.get(IngestBatch, batch_id)
    collection = session.get(Collection, batch.collection_id) if batch is not None else None
    if (
        batch is None
        or collection is None
        or collection.workspace_id != caller.workspace_id
        or not caller.sees_collection(collection.name)
    ):
        raise ApiError(404, "batch_not_found", f"no batch {batch_id}")
    unchanged = Acceptance.UNCHANGED.value
    status = case(
        (BatchItem.accepted_status == unchanged, literal(unchanged)), else_=Document.status
    )
    changed = BatchItem.accepted_status != unchanged
    rows = session.execute(  # one pass over the batch: clients poll this
        select(
            status,
            func.count(),
            func.coalesce(func.sum(Document.embedded_chunks).filter(changed), 0),
            func.coalesce(func.sum(Document.cached_chunks).filter(changed), 0),
        )
        .select_from(BatchItem)
        .join(Document, Document.id == BatchItem.document_id)
        .where(BatchItem.batch_id == batch_id)
        .group_by(status)
    ).all()
    counts = {s: int(n) for s, n, _, _ in rows}
    present = sum(counts.values())
    embedded = sum(int(e) for _, _, e, _ in rows)
    cached = sum(int(c) for _, _, _, c in rows)
    pending = sum(counts.get(s, 0) for s in PENDING)
    return BatchOut(
        batch_id=batch.id,
        collection=collection.name,
        total=batch.total,
        queued=counts.get(DocumentStatus.QUEUED, 0),
        processing=counts.get(DocumentStatus.PROCESSING, 0),
        done=counts.get(DocumentStatus.DONE, 0),
        failed=counts.get(DocumentStatus.FAILED, 0),
        unchanged=counts.get(Acceptance.UNCHANGED, 0),
        deleted=batch.total - present,
        finished=pending == 0,
        embedded_chunks=int(embedded),
        cached_chunks=int(cached),
    )


def recent_batches(
    session: Session, caller: Caller, collection: Collection, limit: int
) -> list[BatchOut]:
    """The collection's newest batches with their progress."""
    ids = session.scalars(
        select(IngestBatch.id)
        .where(IngestBatch.collection_id == collection.id)
        .order_by(IngestBatch.created_at.desc())
        .limit(limit)
    )
    return [batch_progress(session, caller, batch_id) for batch_id in ids]


def delete_document(session: Session, document: Document) -> None:
    """Deletes the document and the attachments taken out of it; their chunks go with them in
    the same transaction."""
    delete_with_attachments(session, document.collection_id, document.id, document.external_id)
    session.expunge(document)


def list_documents(
    session: Session,
    collection: Collection,
    status: DocumentStatus | None,
    after: str | None,
    limit: int,
    principals: tuple[str, ...] | None = None,
) -> tuple[list[Document], str | None]:
    """Returns a page of the collection's documents by client id, optionally by status (only
    those the principals may read, when they are given)."""
    problem = text_problem(after) if after is not None else None
    if problem:
        raise ApiError(422, "invalid_request", f"after {problem}")
    query = _visible(select(Document).where(Document.collection_id == collection.id), principals)
    if status is not None:
        query = query.where(Document.status == status)
    if after is not None:
        query = query.where(Document.external_id > after)
    rows = list(session.scalars(query.order_by(Document.external_id).limit(limit + 1)))
    more = len(rows) > limit
    return rows[:limit], rows[limit - 1].external_id if more else None


def retry_failed(
    session: Session, collection: Collection, external_ids: list[str] | None, limit: int = 1000
) -> list[tuple[int, int, str]]:
    """Queues failed documents again (all of them, or those listed that failed).

    Returns (id, version, client id) of each one queued; documents that are not failed are
    left alone. The caller commits, then enqueues.
    """
    query = (
        update(Document)
        .where(Document.collection_id == collection.id, Document.status == DocumentStatus.FAILED)
        .values(
            status=DocumentStatus.QUEUED,
            error=None,
            error_class=None,
            lease_owner=None,
            attempts=0,
            enqueued_at=func.now(),
            started_at=None,
            embedded_at=None,
            finished_at=None,
        )
        .returning(Document.id, Document.version, Document.external_id)
    )
    if external_ids is not None:
        query = query.where(Document.external_id.in_(external_ids))
    else:
        failed = (
            select(Document.id)
            .where(
                Document.collection_id == collection.id, Document.status == DocumentStatus.FAILED
            )
            .limit(limit)
        )
        query = query.where(Document.id.in_(failed))
    return [(int(i), int(v), str(e)) for i, v, e in session.execute(query)]
