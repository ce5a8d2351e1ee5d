"""Accepting documents: validate, upsert by client id, record the batch. Never commits."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Select, Text, case, cast, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from services.access.caller import Caller, Scope
from services.api.errors import ApiError
from services.api.validation import json_problem, json_size, text_problem
from services.config import Settings
from services.db import driver_connection
from services.ingest.schemas import AcceptedDocument, BatchOut, DocumentIn, DocumentOut
from services.models import BatchItem, Collection, Document, IngestBatch
from services.statuses import PENDING, Acceptance, DocumentStatus

TEXTS = ARRAY(Text)
DOT_SEGMENTS = frozenset({".", ".."})
_REDO = "(d.content_hash <> excluded.content_hash OR d.status = %(failed)s)"
_RESET = {
    "status": "%(queued)s",
    "error": "NULL",
    "error_class": "NULL",
    "lease_owner": "NULL",
    "attempts": "0",
    "accepted_at": "now()",
    "enqueued_at": "now()",
    "started_at": "NULL",
    "embedded_at": "NULL",
    "finished_at": "NULL",
}
_SAME = "d.content_hash = excluded.content_hash"
# What parsing took from a file (its title and metadata such as `pages`) stays with bytes
# uploaded again unchanged; the client's own title and metadata win over it.
_TITLE = f"coalesce(excluded.title, CASE WHEN {_SAME} THEN d.parsed->>'title' END)"
_METADATA = (
    f"CASE WHEN {_SAME} THEN coalesce(d.parsed->'metadata', '{{}}') ELSE '{{}}' END"
    " || excluded.metadata"
)
UPSERT = (
    "INSERT INTO documents AS d (collection_id, external_id, title, source, metadata, access,"
    " content, content_type, content_hash, original_id, version, status, attempts, chunk_count,"
    " token_count, embedded_chunks, cached_chunks, embedded_tokens)"
    " VALUES (%(collection)s, %(external_id)s, %(title)s, %(source)s, %(metadata)s, %(access)s,"
    " %(content)s, %(content_type)s, %(content_hash)s, %(original_id)s, 1, %(queued)s,"
    " 0, 0, 0, 0, 0, 0)"
    " ON CONFLICT ON CONSTRAINT documents_collection_external DO UPDATE SET"
    f" title = {_TITLE}, source = excluded.source, metadata = {_METADATA},"
    " access = excluded.access,"
    f" content = CASE WHEN {_SAME} THEN d.content ELSE excluded.content END,"
    f" parsed = CASE WHEN {_SAME} THEN d.parsed ELSE '{{}}' END,"
    " content_type = excluded.content_type, content_hash = excluded.content_hash,"
    " original_id = excluded.original_id,"
    f" version = CASE WHEN {_SAME} THEN d.version ELSE d.version + 1 END, "
    + ", ".join(
        f"{column} = CASE WHEN {_REDO} THEN {value} ELSE d.{column} END"
        for column, value in _RESET.items()
    )
    + " WHERE "
    + _REDO
    + " OR (d.title, d.source, d.metadata, d.access, d.original_id)"
    f" IS DISTINCT FROM ({_TITLE}, excluded.source, {_METADATA}, excluded.access,"
    " excluded.original_id)"
    " RETURNING d.id, d.external_id, d.version, d.accepted_at = now()"
)
# The documents an upsert left alone (posted again exactly as stored: no row was written,
# so none is returned, but ON CONFLICT locked them).
UNCHANGED = (
    "SELECT id, external_id, version FROM documents"
    " WHERE collection_id = %(collection)s AND external_id = ANY(%(external_ids)s)"
)


# Copies documents' access lists onto their chunks where they differ (retrieval reads the
# chunks' copy inside its index scans).
SYNC_CHUNK_ACCESS = (
    "UPDATE chunks AS c SET access = d.access FROM documents AS d"
    " WHERE c.collection_id = %(collection)s AND d.id = ANY(%(ids)s)"
    " AND c.document_id = d.id AND c.access IS DISTINCT FROM d.access"
)


PIPELINE_TEXT_CHARS = 4 * 1024 * 1024


def _groups(rows: list[dict[str, Any]], chars: int) -> list[list[dict[str, Any]]]:
    """`rows` in order, in groups whose texts add up to at most `chars` (or one row)."""
    groups: list[list[dict[str, Any]]] = []
    size = 0
    for row in rows:
        length = len(row["content"])
        if not groups or size + length > chars:
            groups.append([])
            size = 0
        groups[-1].append(row)
        size += length
    return groups


@dataclass(frozen=True)
class Accepted:
    """The outcome of accepting a batch: what to answer and what to enqueue after commit."""

    batch_id: uuid.UUID
    documents: list[AcceptedDocument]
    to_enqueue: list[tuple[int, int]]
    sizes: list[int]  # characters of content, per document to enqueue


def content_hash(text: str, content_type: str) -> str:
    """Identifies a document's content: the same text read as another type is other content."""
    data = text if content_type == "text/plain" else f"{content_type}\0{text}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


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
        if doc.id is not None and DOT_SEGMENTS & set(doc.id.split("/")):
            raise ApiError(
                422,
                "invalid_id",
                f"{where}: no '/'-separated part of an id may be '.' or '..' (clients and"
                " proxies normalise them out of URLs, so the id could not be fetched)",
            )
        if doc.id is not None:
            if doc.id in seen:
                raise ApiError(422, "duplicate_id", f"{where}: id appears twice in this request")
            seen.add(doc.id)


@dataclass(frozen=True)
class Incoming:
    """A document to upsert: from the documents API, or an uploaded file (`original_id`)."""

    external_id: str
    title: str | None
    source: str | None
    metadata: dict[str, Any]
    access: list[str] | None
    content: str
    content_type: str
    content_hash: str
    original_id: int | None = None
    size: int = 0  # what the parse stage reads: characters of text, bytes of a file

    @classmethod
    def of(cls, doc: DocumentIn) -> Incoming:
        """A document of the documents API."""
        return cls(
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


def accept_documents(
    session: Session, collection: Collection, documents: list[DocumentIn]
) -> Accepted:
    """Upserts documents of the documents API (see `accept`)."""
    return accept(session, collection, [Incoming.of(doc) for doc in documents])


def accept(session: Session, collection: Collection, incoming: list[Incoming]) -> Accepted:
    """Upserts the documents and records the batch in the session's transaction.

    One INSERT … ON CONFLICT statement decides per document: new id → version 1; same id with
    different text → next version, queued (the old chunks stay searchable until the new
    version replaces them); identical text → unchanged, only title/source/metadata/access
    updated (the stored text is kept, not written again); posted exactly as stored → no row
    written at all; identical text of a failed document → queued again. A changed access
    list reaches the stored chunks in the same transaction.
    """
    rows = [
        {
            "collection": collection.id,
            "external_id": doc.external_id,
            "title": doc.title,
            "source": doc.source,
            "metadata": Jsonb(doc.metadata),
            "access": sorted(set(doc.access)) if doc.access is not None else None,
            "content": doc.content,
            "content_type": doc.content_type,
            "content_hash": doc.content_hash,
            "original_id": doc.original_id,
            "queued": DocumentStatus.QUEUED.value,
            "failed": DocumentStatus.FAILED.value,
        }
        for doc in incoming
    ]
    sizes_of = {doc.external_id: doc.size for doc in incoming}
    # One prepared statement run per document in a pipeline: a multi-row VALUES list would
    # be a new statement for every batch size, built and parsed each time (twice as slow).
    # A pipeline encodes all its parameters before the server answers, so texts go in groups
    # of at most PIPELINE_TEXT_CHARS: a large request is not held a second time, encoded.
    result: dict[str, tuple[int, int, bool]] = {}
    with driver_connection(session).cursor() as cursor:
        for group in _groups(rows, PIPELINE_TEXT_CHARS):
            cursor.executemany(UPSERT, group, returning=True)
            more = True
            while more:
                for doc_id, ext, version, fresh in cursor.fetchall():
                    result[ext] = (doc_id, version, fresh)
                more = bool(cursor.nextset())
        untouched = [str(row["external_id"]) for row in rows if row["external_id"] not in result]
        if untouched:
            cursor.execute(UNCHANGED, {"collection": collection.id, "external_ids": untouched})
            for doc_id, ext, version in cursor.fetchall():
                result[ext] = (doc_id, version, False)

    batch = IngestBatch(id=uuid.uuid4(), collection_id=collection.id, total=len(rows))
    session.add(batch)
    session.flush()
    accepted, items, to_enqueue, sizes = [], [], [], []
    for row in rows:
        external_id = str(row["external_id"])
        doc_id, version, fresh = result[external_id]
        status = Acceptance.QUEUED if fresh else Acceptance.UNCHANGED
        accepted.append(AcceptedDocument(id=external_id, status=status, version=version))
        items.append(
            {
                "batch_id": batch.id,
                "document_id": doc_id,
                "version": version,
                "accepted_status": status.value,
            }
        )
        if fresh:
            to_enqueue.append((doc_id, version))
            sizes.append(sizes_of[external_id])
    with driver_connection(session).cursor() as cursor:
        cursor.executemany(
            "INSERT INTO batch_items (batch_id, document_id, version, accepted_status)"
            " VALUES (%(batch_id)s, %(document_id)s, %(version)s, %(accepted_status)s)",
            items,
        )
        # Access lists apply at once, to the searchable version too: no re-embedding.
        ids = [doc_id for doc_id, _, _ in result.values()]
        cursor.execute(SYNC_CHUNK_ACCESS, {"collection": collection.id, "ids": ids})
    return Accepted(batch.id, accepted, to_enqueue, sizes)


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


def delete_document(session: Session, document: Document) -> None:
    """Deletes the document; its chunks go with it in the same transaction."""
    session.delete(document)


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
