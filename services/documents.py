"""Accepting documents into a collection: upsert by client id, record the batch, say what to
enqueue. The one path for every document, whether the documents API sent its text, a file was
uploaded, or a worker found it attached to a message. Never commits."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from services.batching import pack
from services.db import driver_connection
from services.models import IngestBatch
from services.statuses import Acceptance, DocumentStatus

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


# A message's attachments take its access list (they hold what it holds); returns their ids.
SYNC_ATTACHMENT_ACCESS = (
    "UPDATE documents AS a SET access = p.access FROM documents AS p"
    " WHERE p.collection_id = %(collection)s AND p.id = ANY(%(ids)s)"
    " AND a.collection_id = p.collection_id AND a.metadata ? 'attached_to'"
    " AND a.metadata ->> 'attached_to' = p.external_id AND a.access IS DISTINCT FROM p.access"
    " RETURNING a.id"
)
# A document and the attachments taken out of it.
DELETE_WITH_ATTACHMENTS = (
    "DELETE FROM documents WHERE collection_id = %(collection)s AND (id = %(id)s"
    " OR (metadata ? 'attached_to' AND metadata ->> 'attached_to' = %(external_id)s))"
)

PIPELINE_TEXT_CHARS = 4 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """What became of one document: `queued` (with its new version) or `unchanged`."""

    id: str
    status: Acceptance
    version: int


@dataclass(frozen=True)
class Accepted:
    """The outcome of accepting a batch: what to answer and what to enqueue after commit."""

    batch_id: uuid.UUID
    documents: list[Outcome]
    to_enqueue: list[tuple[int, int]]
    sizes: list[int]  # characters of content, per document to enqueue


def content_hash(text: str, content_type: str) -> str:
    """Identifies a document's content: the same text read as another type is other content."""
    data = text if content_type == "text/plain" else f"{content_type}\0{text}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


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
    def file(
        cls,
        external_id: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: bytes,
        original_id: int,
        access: list[str] | None,
        metadata: dict[str, Any],
    ) -> Incoming:
        """An uploaded (or attached) file's document: parsed later from its original, its
        metadata the given keys and the file's own (`filename`, `content_type`, `bytes`,
        `sha256`), which win."""
        digest = sha256.hex()
        return cls(
            external_id=external_id,
            title=None,
            source=filename,
            metadata={
                **metadata,
                "filename": filename,
                "content_type": content_type,
                "bytes": size,
                "sha256": digest,
            },
            access=access,
            content="",
            content_type=content_type,
            content_hash=f"file:{content_type}:{digest}",
            original_id=original_id,
            size=size,
        )


def accept(session: Session, collection_id: int, incoming: list[Incoming]) -> Accepted:
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
            "collection": collection_id,
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
        for group in pack(
            rows, lambda row: len(str(row["content"])), len(rows), PIPELINE_TEXT_CHARS
        ):
            cursor.executemany(UPSERT, group, returning=True)
            more = True
            while more:
                for doc_id, ext, version, fresh in cursor.fetchall():
                    result[ext] = (doc_id, version, fresh)
                more = bool(cursor.nextset())
        untouched = [str(row["external_id"]) for row in rows if row["external_id"] not in result]
        if untouched:
            cursor.execute(UNCHANGED, {"collection": collection_id, "external_ids": untouched})
            for doc_id, ext, version in cursor.fetchall():
                result[ext] = (doc_id, version, False)

    batch = IngestBatch(id=uuid.uuid4(), collection_id=collection_id, total=len(rows))
    session.add(batch)
    session.flush()
    accepted, items, to_enqueue, sizes = [], [], [], []
    for row in rows:
        external_id = str(row["external_id"])
        doc_id, version, fresh = result[external_id]
        status = Acceptance.QUEUED if fresh else Acceptance.UNCHANGED
        accepted.append(Outcome(external_id, status, version))
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
        cursor.execute(SYNC_ATTACHMENT_ACCESS, {"collection": collection_id, "ids": ids})
        ids += [int(row[0]) for row in cursor.fetchall()]
        cursor.execute(SYNC_CHUNK_ACCESS, {"collection": collection_id, "ids": ids})
    return Accepted(batch.id, accepted, to_enqueue, sizes)


def delete_with_attachments(
    session: Session, collection_id: int, document_id: int, external_id: str
) -> None:
    """Deletes a document and its attachments; their chunks go with them (and their
    originals with their last document), in the session's transaction."""
    with driver_connection(session).cursor() as cursor:
        cursor.execute(
            DELETE_WITH_ATTACHMENTS,
            {"collection": collection_id, "id": document_id, "external_id": external_id},
        )
