"""Building a migration's shadow space from what is stored: the two stages of ingestion again,
for the target embedder and chunking, writing into the migration's table instead.

`prepare_space` (queue `ingest`) reads each document's stored text (an uploaded file: its
original, parsed again, so pages and time spans keep their locations), chunks it for the
target, and writes at once the documents whose chunks the target space's embedding cache
already has; the rest leave as embedding batches. `embed_space` (queue `embed`) embeds what a
batch lacks through the same embedder registry (and so the same provider budget), keeps the
vectors in the cache, and writes. Nothing is fetched from a source, and no document's status
changes: the active space and its documents go on as before.

A write is fenced by the document's version (a document updated meanwhile writes nothing and
is due again at its new version) and by the migration still building or ready, under a share
lock on its row, so a switch, which locks it for update, never races a write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.embedding import PermanentEmbeddingError, Vectors
from services.embedding.cache import cached_vectors, remember_vectors
from services.embedding.requests import Timer
from services.runtime import Runtime
from services.spaces.tables import shadow_name
from services.statuses import FailureClass
from workers.claims import Claimed, Failure
from workers.ledger import attribute, observe_requests, record_requests
from workers.parse_process import ParseProcess
from workers.pipeline import chunk_document, embed_each, embed_texts, missing_texts
from workers.store import COPY_COLUMNS, Written, copy_chunks
from workers.work import DocumentWork, embedding_batches

log = logging.getLogger(__name__)

NO_OWNER = uuid.UUID(int=0)  # shadow work holds no lease: its fence is the version

_TARGET = text(
    """
    SELECT m.id, m.collection_id, m.embedder, m.dimensions, m.chunk_tokens, m.chunk_overlap,
           m.space, c.language
    FROM space_migrations m JOIN collections c ON c.id = m.collection_id
    WHERE m.id = :migration AND m.status IN ('building', 'ready')
    """
)
_LOCK_TARGET = text(
    "SELECT 1 FROM space_migrations WHERE id = :migration AND status IN ('building', 'ready')"
    " FOR SHARE"
)
_DOCUMENTS = text(
    """
    SELECT d.id, d.version, d.content, d.content_type, d.original_id,
           coalesce(d.metadata->>'filename', d.external_id), d.external_id, c.workspace_id,
           d.access, d.metadata ? 'attached_to'
    FROM documents d
    JOIN collections c ON c.id = d.collection_id
    JOIN unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS w(id, version)
      ON d.id = w.id AND d.version = w.version
    WHERE d.collection_id = :collection
    ORDER BY d.id
    """
)
# The documents to write, still at the version built, locked against a change meanwhile; with
# their access lists as they are now.
_LOCK_CURRENT = text(
    """
    SELECT d.id, d.access FROM documents d
    JOIN unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS w(id, version)
      ON d.id = w.id AND d.version = w.version
    WHERE d.collection_id = :collection
    ORDER BY d.id
    FOR SHARE OF d
    """
)
_MARK_BUILT = text(
    """
    UPDATE space_documents s
    SET built_version = w.version, built_at = now(), chunk_count = w.chunks,
        token_count = w.tokens, embedded = w.embedded, cached = w.cached,
        embedded_tokens = w.embedded_tokens, error = w.error
    FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:chunks AS int[]),
                CAST(:tokens AS int[]), CAST(:embedded AS int[]), CAST(:cached AS int[]),
                CAST(:embedded_tokens AS int[]), CAST(:errors AS text[]))
         AS w(id, version, chunks, tokens, embedded, cached, embedded_tokens, error)
    WHERE s.migration_id = :migration AND s.document_id = w.id
    """
)


@dataclass(frozen=True)
class Target:
    """What a migration builds: the target embedder and chunking of a collection."""

    migration_id: int
    collection_id: int
    embedder: str
    dimensions: int
    chunk_tokens: int
    chunk_overlap: int
    space: str
    language: str


def load_target(session: Session, migration_id: int) -> Target | None:
    """The migration's target, while it is building or ready; None after."""
    row = session.execute(_TARGET, {"migration": migration_id}).first()
    return Target(*row) if row is not None else None


def _claimed(target: Target, row: Any) -> Claimed:
    did, version, content, content_type, original_id, filename, external_id, ws, access, att = row
    return Claimed(
        id=int(did),
        version=int(version),
        collection_id=target.collection_id,
        content=str(content),
        content_type=str(content_type),
        embedder=target.embedder,
        dimensions=target.dimensions,
        chunk_tokens=target.chunk_tokens,
        chunk_overlap=target.chunk_overlap,
        language=target.language,
        original_id=int(original_id) if original_id is not None else None,
        filename=str(filename),
        external_id=str(external_id),
        workspace_id=int(ws),
        access=list(access) if access is not None else None,
        attached=bool(att),
    )


def prepare_space(
    runtime: Runtime,
    migration_id: int,
    items: Sequence[tuple[int, int]],
    parser: ParseProcess | None = None,
) -> list[list[DocumentWork]]:
    """Chunks the listed documents for the migration's target and writes those the cache
    covers; returns the embedding batches left for `embed_space`."""
    database = runtime.database
    with database.scope() as session:
        target = load_target(session, migration_id)
        if target is None or not items:
            return []
        rows = session.execute(
            _DOCUMENTS,
            {
                "ids": [i for i, _ in items],
                "versions": [v for _, v in items],
                "collection": target.collection_id,
            },
        ).all()
    works: list[DocumentWork] = []
    failures: list[Failure] = []
    for row in rows:
        chunked = chunk_document(runtime, _claimed(target, row), NO_OWNER, parser)
        if chunked.failure is not None:
            failures.append(chunked.failure)
        elif chunked.work is not None:
            works.append(chunked.work)
    embedder = runtime.embedders.get(target.embedder, target.dimensions)
    with database.scope() as session:
        known = cached_vectors(
            session, target.space, [c.content_hash for w in works for c in w.chunks]
        )
        complete = [w for w in works if all(c.content_hash in known for c in w.chunks)]
        counts = {w.id: Written(0, len(w.chunks), 0) for w in complete}
        store_space(session, target, complete, known, counts, failures)
    written = {w.id for w in complete}
    pending = [w for w in works if w.id not in written]
    missing = {w.id: sum(1 for c in w.chunks if c.content_hash not in known) for w in pending}
    limits = {target.collection_id: embedder.batch_inputs}
    return list(embedding_batches(pending, missing, limits))


def embed_space(runtime: Runtime, migration_id: int, works: Sequence[DocumentWork]) -> int:
    """Embeds what a batch lacks in the target space and writes it; returns texts embedded.

    Transient errors propagate to the task, which retries; vectors already paid for stay in
    the cache. A provider that rejects a document's text fails that document's build only.
    """
    database = runtime.database
    with database.scope() as session:
        target = load_target(session, migration_id)
        if target is None or not works:
            return 0
        known = cached_vectors(
            session, target.space, [c.content_hash for w in works for c in w.chunks]
        )
    embedder = runtime.embedders.get(target.embedder, target.dimensions)
    missing = missing_texts(works, known)
    fresh: dict[bytes, Vectors] = {}
    failures: list[Failure] = []
    timer = Timer()
    try:
        try:
            fresh = embed_texts(embedder, missing)
        except PermanentEmbeddingError as error:
            if len(works) > 1:
                fresh, failures = embed_each(embedder, works, known)
            else:
                failures = [_failure(works[0], error)]
    finally:
        requests = embedder.requests.drain()
        with database.scope() as session:
            record_requests(session, uuid.uuid4(), target.collection_id, target.space, requests)
            remember_vectors(session, target.space, fresh)
        observe_requests(target.space, requests)
    log.debug("migration %d: embedded %d texts in %.0f ms", migration_id, len(fresh), timer.ms())
    failed = {f.id for f in failures}
    ready = [w for w in works if w.id not in failed]
    with database.scope() as session:
        store_space(session, target, ready, {**known, **fresh}, attribute(ready, known), failures)
    return len(fresh)


def _failure(work: DocumentWork, error: Exception) -> Failure:
    return Failure(work.id, work.version, NO_OWNER, FailureClass.EMBEDDING, f"embedding: {error}")


def store_space(
    session: Session,
    target: Target,
    works: Sequence[DocumentWork],
    vectors: Mapping[bytes, Vectors],
    counts: Mapping[int, Written],
    failures: Sequence[Failure] = (),
) -> set[int]:
    """Replaces each listed document's chunks in the shadow table, where the document is still
    at the version built and the migration still open; records failures as built without
    chunks. Returns the ids written."""
    if not works and not failures:
        return set()
    if session.execute(_LOCK_TARGET, {"migration": target.migration_id}).first() is None:
        return set()  # switched, abandoned or failed meanwhile
    listed = [*((w.id, w.version) for w in works), *((f.id, f.version) for f in failures)]
    locked = session.execute(
        _LOCK_CURRENT,
        {
            "ids": [i for i, _ in listed],
            "versions": [v for _, v in listed],
            "collection": target.collection_id,
        },
    )
    access = {int(i): list(a) if a is not None else None for i, a in locked}
    writable = [w for w in works if w.id in access]
    failed = [f for f in failures if f.id in access]
    table = shadow_name(target.collection_id, target.migration_id)
    ids = [w.id for w in writable] + [f.id for f in failed]
    if not ids:
        return set()
    session.execute(
        text(f'DELETE FROM "{table}" WHERE document_id = ANY(CAST(:ids AS bigint[]))'),
        {"ids": ids},
    )
    copy_chunks(
        session,
        f'COPY "{table}" ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)',
        writable,
        vectors,
        access,
    )
    zero = Written(0, 0, 0)
    session.execute(
        _MARK_BUILT,
        {
            "migration": target.migration_id,
            "ids": ids,
            "versions": [w.version for w in writable] + [f.version for f in failed],
            "chunks": [len(w.chunks) for w in writable] + [0] * len(failed),
            "tokens": [sum(c.token_count for c in w.chunks) for w in writable] + [0] * len(failed),
            "embedded": [counts.get(w.id, zero).embedded for w in writable] + [0] * len(failed),
            "cached": [counts.get(w.id, zero).cached for w in writable] + [0] * len(failed),
            "embedded_tokens": [counts.get(w.id, zero).embedded_tokens for w in writable]
            + [0] * len(failed),
            "errors": [None] * len(writable) + [f.reason[:2000] for f in failed],
        },
    )
    for f in failed:
        log.warning("migration %d: document %d not built: %s", target.migration_id, f.id, f.reason)
    return {w.id for w in writable}
