"""Processes one document version: claim, chunk, embed (through the cache), store."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func
from sqlalchemy.orm import Session

from services.db import session_scope
from services.embedding import Embedder, get_embedder
from services.embedding.base import Vectors
from services.models import DONE, FAILED, PROCESSING, Collection, EmbeddingUsage
from workers.chunking import Chunk, chunk_text
from workers.parsing import parse
from workers.store import cached_vectors, lock_document, remember_vectors, replace_chunks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a run did: `done`, `skipped` (nothing to do) or `failed`, with a reason."""

    status: str
    reason: str = ""
    chunks: int = 0
    embedded: int = 0


@dataclass(frozen=True)
class Claim:
    """The document text and settings a run needs, read while claiming it."""

    content: str
    content_type: str
    space_spec: str
    chunk_tokens: int
    chunk_overlap: int
    language: str


def claim(session: Session, document_id: int, version: int) -> Claim | Outcome:
    """Marks the document `processing` for `version`, or says why there is nothing to do."""
    document = lock_document(session, document_id)
    if document is None:
        return Outcome("skipped", "document deleted")
    if document.version != version:
        return Outcome("skipped", f"superseded by version {document.version}")
    if document.status == DONE and document.indexed_version == version:
        return Outcome("skipped", "already done")
    if document.status == FAILED:
        return Outcome("skipped", "already failed")
    collection = session.get(Collection, document.collection_id)
    assert collection is not None
    document.status = PROCESSING
    document.attempts += 1
    document.started_at = func.now()
    return Claim(
        document.content,
        document.content_type,
        collection.embedder,
        collection.chunk_tokens,
        collection.chunk_overlap,
        collection.language,
    )


def embed_missing(
    embedder: Embedder, chunks: list[Chunk], known: dict[bytes, Vectors]
) -> tuple[Vectors, dict[bytes, Vectors]]:
    """Returns a vector per chunk, embedding only texts `known` lacks, and the new vectors."""
    missing: dict[bytes, str] = {}
    for chunk in chunks:
        if chunk.content_hash not in known:
            missing.setdefault(chunk.content_hash, chunk.text)
    fresh: dict[bytes, Vectors] = {}
    if missing:
        fresh = dict(zip(missing.keys(), embedder.embed(list(missing.values())), strict=True))
    vectors = np.empty((len(chunks), embedder.dimensions), dtype=np.float32)
    for i, chunk in enumerate(chunks):
        vectors[i] = (
            fresh[chunk.content_hash] if chunk.content_hash in fresh else known[chunk.content_hash]
        )
    return vectors, fresh


def process_document(document_id: int, version: int) -> Outcome:
    """Runs the whole pipeline for one document version; safe to run any number of times.

    No transaction stays open while the embedder runs: the claim, the cache lookup and the
    final write are three short transactions, and the write is fenced by version.
    """
    with session_scope() as session:
        claimed = claim(session, document_id, version)
    if isinstance(claimed, Outcome):
        return claimed
    embedder = get_embedder(claimed.space_spec)
    text = parse(claimed.content, claimed.content_type)
    chunks = chunk_text(text, embedder.tokenizer, claimed.chunk_tokens, claimed.chunk_overlap)
    with session_scope() as session:
        known = cached_vectors(session, embedder.space, [c.content_hash for c in chunks])
    started = time.perf_counter()
    vectors, fresh = embed_missing(embedder, chunks, known)
    latency_ms = (time.perf_counter() - started) * 1000
    embedded_at = datetime.now(UTC)
    cached = sum(1 for c in chunks if c.content_hash not in fresh)
    tokens = sum(
        {c.content_hash: c.token_count for c in chunks if c.content_hash in fresh}.values()
    )
    with session_scope() as session:
        remember_vectors(session, embedder.space, fresh)
        document = lock_document(session, document_id)
        if document is None or not replace_chunks(
            session, document, version, chunks, vectors, claimed.language
        ):
            return Outcome("skipped", "fenced out by a newer or finished run")
        document.embedded_at = embedded_at
        document.finished_at = func.now()
        document.embedded_chunks = len(fresh)
        document.cached_chunks = cached
        document.embedded_tokens = tokens
        session.add(
            EmbeddingUsage(
                collection_id=document.collection_id,
                document_id=document.id,
                space=embedder.space,
                inputs=len(fresh),
                cached=cached,
                tokens=tokens,
                latency_ms=latency_ms,
                outcome="ok",
            )
        )
    return Outcome("done", chunks=len(chunks), embedded=len(fresh))


def mark_failed(document_id: int, version: int, reason: str) -> bool:
    """Marks `version` of the document failed with `reason`; False if it was superseded."""
    with session_scope() as session:
        document = lock_document(session, document_id)
        if document is None or document.version != version or document.status == DONE:
            return False
        document.status = FAILED
        document.error = reason[:2000]
        document.finished_at = func.now()
        return True
