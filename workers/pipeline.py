"""The two stages of processing, as plain functions the Celery tasks wrap.

`prepare` (queue `ingest`) claims a batch of documents under one lease owner, parses and
chunks them, and looks their chunks up in the embedding cache: documents with nothing left to
embed are written at once, the rest leave as embedding batches. `embed_and_store` (queue
`embed`) embeds the texts a batch still lacks in as few provider requests as the limits allow,
across documents, then writes every still-owned document in one transaction. No transaction
stays open while the embedder runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.documents import Accepted
from services.embedding import Embedder, EmbedderRegistry, PermanentEmbeddingError, Vectors
from services.embedding.cache import cached_vectors, remember_vectors
from services.embedding.requests import Timer
from services.runtime import Runtime
from services.statuses import FailureClass
from workers.attachments import accept_attachments
from workers.chunking import chunk_sections, chunk_text
from workers.claims import (
    Claimed,
    Failure,
    claim_documents,
    fail_documents,
    give_up_exhausted,
    renew_leases,
    requeue_superseded,
)
from workers.files import ParsedFile, parse_file, record
from workers.formats.extracted import Mark, ProviderBusy, locate
from workers.formats.mail import Attachment
from workers.lease import LeaseKeeper
from workers.ledger import (
    attribute,
    count_finished,
    observe_requests,
    record_requests,
    record_usage,
)
from workers.parse_process import ParseProcess
from workers.parsing import parse
from workers.store import Written, store_documents
from workers.work import DocumentWork, embedding_batches

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What the parse-and-chunk stage did, and the embedding batches it leaves."""

    claimed: int = 0
    done: int = 0
    failed: int = 0
    batches: list[list[DocumentWork]] = field(default_factory=list)


@dataclass
class Stored:
    """What the embedding stage did."""

    done: int = 0
    failed: int = 0
    fenced: int = 0
    embedded: int = 0


def prepare(
    runtime: Runtime, items: Sequence[tuple[int, int]], parser: ParseProcess | None = None
) -> Prepared:
    """Claims, parses and chunks `items` (document id, version); writes those fully cached.

    `parser` parses HTML under its time limit; without one, parsing runs in this process.
    Versions claimed `document_max_attempts` times already fail as `gave_up` instead.
    """
    settings, database, embedders = runtime.settings, runtime.database, runtime.embedders
    owner = uuid.uuid4()
    with database.scope() as session:
        exhausted = give_up_exhausted(session, items, settings.document_max_attempts)
        claimed = claim_documents(session, items, owner, settings.processing_lease_s)
    count_finished({}, len(exhausted))
    result = Prepared(claimed=len(claimed))
    works: list[DocumentWork] = []
    failures: list[Failure] = []
    files: list[ParsedFile] = []
    attached: list[tuple[Claimed, list[Attachment]]] = []
    for doc in claimed:
        chunked = chunk_document(runtime, doc, owner, parser)
        if chunked.failure is not None:
            failures.append(chunked.failure)
            continue
        assert chunked.work is not None
        works.append(chunked.work)
        if chunked.file is not None:
            files.append(chunked.file)
        if chunked.attachments:
            attached.append((doc, chunked.attachments))
    found: list[Accepted] = []
    with database.scope() as session:
        for parent, attachments in attached:
            try:
                with session.begin_nested():  # one message's attachments cannot fail the rest
                    accepted, skipped = accept_attachments(session, parent, owner, attachments)
            except (DBAPIError, psycopg.Error) as error:
                log.warning("attachments of document %s not stored: %s", parent.id, error)
                accepted, skipped = None, [f"all {len(attachments)}: they could not be stored"]
            found.extend([accepted] if accepted is not None else [])
            for parsed_file in files:
                if parsed_file.id == parent.id and skipped:
                    parsed_file.metadata["attachments_skipped"] = skipped
        record(session, [f for f in files if f.id not in failed(failures)], owner)
        known = _cached(session, embedders, works)
        complete = [w for w in works if all(c.content_hash in known for c in w.chunks)]
        complete_ids = {w.id for w in complete}
        pending = [w for w in works if w.id not in complete_ids]
        counts = {w.id: Written(0, len(w.chunks), 0) for w in complete}
        superseded = requeue_superseded(session, works)
        written = store_documents(session, complete, known, counts)
        done = [w for w in complete if w.id in written]
        record_usage(session, embedders, done, counts, None, 0.0)
        result.failed = len(fail_documents(session, failures))
    result.done = len(written)
    count_finished(written, result.failed)
    if written:
        runtime.wrote({w.collection_id for w in complete if w.id in written})
    for accepted in found:  # committed: their parse tasks may go
        runtime.broker.enqueue(accepted.to_enqueue, accepted.sizes, settings.files_per_task())
    if superseded:  # chunked for a space the collection left: again, for the one it has now
        runtime.broker.enqueue(superseded)
        again = {i for i, _ in superseded}
        pending = [w for w in pending if w.id not in again]
    missing = {w.id: sum(1 for c in w.chunks if c.content_hash not in known) for w in pending}
    limits = {
        w.collection_id: embedders.get(w.embedder, w.dimensions).batch_inputs for w in pending
    }
    result.batches.extend(embedding_batches(pending, missing, limits))
    return result


@dataclass
class Chunked:
    """One claimed document parsed and chunked, or why it could not be."""

    work: DocumentWork | None = None
    failure: Failure | None = None
    file: ParsedFile | None = None  # an uploaded file's text, title and metadata, to record
    attachments: list[Attachment] = field(default_factory=list)


def chunk_document(
    runtime: Runtime, doc: Claimed, owner: uuid.UUID, parser: ParseProcess | None = None
) -> Chunked:
    """Parses (an uploaded file from its original) and chunks one document for its embedder
    and chunk settings, as `doc` gives them.

    Unparseable content fails the document only; a parse past its time limit or a busy
    provider is the task's to handle (fail or retry).
    """
    settings, database = runtime.settings, runtime.database
    try:
        embedder = runtime.embedders.get(doc.embedder, doc.dimensions)  # transient: task retries
    except PermanentEmbeddingError as error:
        why = f"embedding: {error}"
        return Chunked(failure=Failure(doc.id, doc.version, owner, FailureClass.EMBEDDING, why))
    marks: list[Mark] = []
    result = Chunked()
    try:
        if doc.original_id is not None:
            parsed = parse_file(database, doc, parser, settings)
            extracted = parsed.extracted
            body, marks = extracted.text, extracted.marks
            result.attachments = list(parsed.attachments)
            result.file = ParsedFile(
                doc.id, doc.version, body, extracted.title or doc.filename, extracted.metadata
            )
        else:
            body = (parser.parse if parser is not None else parse)(doc.content, doc.content_type)
    except (SoftTimeLimitExceeded, ProviderBusy):
        raise
    except Exception as error:  # unparseable content fails its document only
        why = f"parse: {error}"
        return Chunked(failure=Failure(doc.id, doc.version, owner, FailureClass.PARSE, why))
    if not body.strip():  # markup with nothing a reader would see: nothing to search
        what = "file" if doc.original_id is not None else "document"
        why = f"parse: no text: the {doc.content_type} {what} has no visible text"
        return Chunked(failure=Failure(doc.id, doc.version, owner, FailureClass.PARSE, why))
    if marks and "page" in marks[0].location:  # a chunk is cited by one page
        starts = [m.start for m in marks]
        chunks = chunk_sections(
            body, starts, embedder.tokenizer, doc.chunk_tokens, doc.chunk_overlap
        )
    else:
        chunks = chunk_text(body, embedder.tokenizer, doc.chunk_tokens, doc.chunk_overlap)
    locations = tuple(locate(marks, c.start, c.end) for c in chunks) if marks else ()
    result.work = DocumentWork(
        doc.id,
        doc.version,
        owner,
        doc.collection_id,
        doc.embedder,
        doc.dimensions,
        doc.language,
        tuple(chunks),
        locations,
        doc.generation,
    )
    return result


def failed(failures: Sequence[Failure]) -> set[int]:
    """The ids of the documents in `failures`."""
    return {f.id for f in failures}


def _cached(
    session: Session, embedders: EmbedderRegistry, works: Sequence[DocumentWork]
) -> dict[bytes, Vectors]:
    known: dict[bytes, Vectors] = {}
    by_space: dict[str, list[bytes]] = {}
    for work in works:
        space = embedders.get(work.embedder, work.dimensions).space
        by_space.setdefault(space, []).extend(c.content_hash for c in work.chunks)
    for space, hashes in by_space.items():
        known.update(cached_vectors(session, space, hashes))
    return known


def embed_and_store(runtime: Runtime, works: Sequence[DocumentWork]) -> Stored:
    """Embeds what a batch of one collection still lacks, then writes its documents.

    A provider that rejects the shared request (one bad input) gets each document's texts on
    their own, so only the documents it rejects fail. Transient errors propagate to the task,
    which retries the whole batch; vectors already computed stay in the cache.
    """
    settings, database, embedders = runtime.settings, runtime.database, runtime.embedders
    result = Stored()
    if not works:
        return result
    embedder = embedders.get(works[0].embedder, works[0].dimensions)
    collection_id = works[0].collection_id
    batch_id = uuid.uuid4()
    with database.scope() as session:
        owned = renew_leases(session, works, settings.processing_lease_s)
        live = [w for w in works if w.id in owned]
        known = cached_vectors(
            session, embedder.space, [c.content_hash for w in live for c in w.chunks]
        )
    result.fenced = len(works) - len(live)
    if not live:  # every document was superseded, taken over, deleted or finished meanwhile
        return result
    missing = missing_texts(live, known)
    timer = Timer()
    fresh: dict[bytes, Vectors] = {}
    failures: list[Failure] = []
    try:
        with LeaseKeeper(database, live, settings.processing_lease_s):
            try:
                fresh = embed_texts(embedder, missing)
            except PermanentEmbeddingError as error:
                if len(live) > 1:
                    fresh, failures = embed_each(embedder, live, known)
                else:
                    failures = [_embedding_failure(w, error) for w in live]
    finally:
        latency_ms = timer.ms()
        requests = embedder.requests.drain()
        with database.scope() as session:  # what was paid for is kept, whatever comes next
            record_requests(session, batch_id, collection_id, embedder.space, requests)
            remember_vectors(session, embedder.space, fresh)
        observe_requests(embedder.space, requests)
    embedded_at = datetime.now(UTC)
    failed_ids = {f.id for f in failures}
    ready = [w for w in live if w.id not in failed_ids]
    vectors = {**known, **fresh}
    counts = attribute(ready, known)
    with database.scope() as session:
        superseded = requeue_superseded(session, ready)
        written = store_documents(session, ready, vectors, counts, embedded_at)
        done = [w for w in ready if w.id in written]
        record_usage(session, embedders, done, counts, batch_id, latency_ms)
        result.failed = len(fail_documents(session, failures))
    result.done = len(written)
    count_finished(written, result.failed)
    if written:
        runtime.wrote([collection_id])
    if superseded:
        runtime.broker.enqueue(superseded)
    result.fenced += len(ready) - len(written)
    result.embedded = len(fresh)
    return result


def missing_texts(works: Sequence[DocumentWork], known: dict[bytes, Vectors]) -> dict[bytes, str]:
    missing: dict[bytes, str] = {}
    for work in works:
        for chunk in work.chunks:
            if chunk.content_hash not in known:
                missing.setdefault(chunk.content_hash, chunk.text)
    return missing


def embed_texts(embedder: Embedder, texts: dict[bytes, str]) -> dict[bytes, Vectors]:
    if not texts:
        return {}
    rows = embedder.embed(list(texts.values()))
    return dict(zip(texts.keys(), rows, strict=True))


def embed_each(
    embedder: Embedder, works: Sequence[DocumentWork], known: dict[bytes, Vectors]
) -> tuple[dict[bytes, Vectors], list[Failure]]:
    """Embeds document by document after a shared request was rejected."""
    fresh: dict[bytes, Vectors] = {}
    failures: list[Failure] = []
    for work in works:
        try:
            fresh.update(embed_texts(embedder, missing_texts([work], {**known, **fresh})))
        except PermanentEmbeddingError as error:
            failures.append(_embedding_failure(work, error))
    return fresh, failures


def _embedding_failure(work: DocumentWork, error: Exception) -> Failure:
    return Failure(work.id, work.version, work.owner, FailureClass.EMBEDDING, f"embedding: {error}")


def fail(
    runtime: Runtime, works: Sequence[DocumentWork], error_class: FailureClass, reason: str
) -> int:
    """Marks the batch's still-owned documents failed; returns how many."""
    return _fail(runtime, [Failure(w.id, w.version, w.owner, error_class, reason) for w in works])


def fail_unclaimed(
    runtime: Runtime, items: Sequence[tuple[int, int]], error_class: FailureClass, reason: str
) -> int:
    """Marks listed versions failed whoever holds them (a batch that could not be prepared)."""
    return _fail(runtime, [Failure(i, v, None, error_class, reason) for i, v in items])


def _fail(runtime: Runtime, failures: list[Failure]) -> int:
    with runtime.database.scope() as session:
        failed = len(fail_documents(session, failures))
    count_finished({}, failed)
    return failed


def process_now(runtime: Runtime, items: Sequence[tuple[int, int]]) -> Stored:
    """Runs both stages in this process, one after the other (for tests and benchmarks)."""
    prepared = prepare(runtime, items)
    total = Stored(done=prepared.done, failed=prepared.failed)
    for batch in prepared.batches:
        stored = embed_and_store(runtime, batch)
        total.done += stored.done
        total.failed += stored.failed
        total.fenced += stored.fenced
        total.embedded += stored.embedded
    return total
