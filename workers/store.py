"""Writes a document version's chunks: one transaction, fenced by version, bulk-loaded by COPY."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.db import driver_connection
from services.embedding.base import Vectors
from services.models import DONE, Document
from workers.chunking import Chunk

_COPY_CHUNKS = (
    "COPY chunks (collection_id, document_id, doc_version, ordinal, text, char_start, char_end,"
    " token_count, content_hash, embedding, ts_config) FROM STDIN WITH (FORMAT BINARY)"
)
# regconfig travels as its OID (regconfig's binary form is the oid's).
_CHUNK_TYPES = [
    "int8", "int8", "int4", "int4", "text", "int4", "int4", "int4", "bytea", "vector", "oid",
]  # fmt: skip


def as_array(value: Any) -> Vectors:
    """Returns a pgvector value (a `Vector` from the binary loader, or an array) as float32."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def cached_vectors(session: Session, space: str, hashes: Sequence[bytes]) -> dict[bytes, Vectors]:
    """Returns the cached vector of each hash that `space` already has."""
    if not hashes:
        return {}
    rows = session.execute(
        text(
            "SELECT content_hash, embedding FROM embedding_cache"
            " WHERE space = :space AND content_hash = ANY(:hashes)"
        ),
        {"space": space, "hashes": list(set(hashes))},
    )
    return {bytes(h): as_array(v) for h, v in rows}


def remember_vectors(session: Session, space: str, vectors: dict[bytes, Vectors]) -> None:
    """Adds newly computed vectors to the embedding cache; entries already there are kept."""
    if not vectors:
        return
    session.execute(
        text(
            "INSERT INTO embedding_cache (space, content_hash, embedding)"
            " VALUES (:space, :hash, :embedding) ON CONFLICT DO NOTHING"
        ),
        [{"space": space, "hash": h, "embedding": v} for h, v in vectors.items()],
    )


def lock_document(session: Session, document_id: int) -> Document | None:
    """Returns the document row locked for update, or None when it no longer exists."""
    return session.get(Document, document_id, with_for_update=True, populate_existing=True)


def text_search_oid(session: Session, language: str) -> int:
    """Returns the OID of a text search configuration, for the binary COPY."""
    return int(
        session.execute(
            text("SELECT CAST(CAST(:cfg AS regconfig) AS oid)"), {"cfg": language}
        ).scalar_one()
    )


def replace_chunks(
    session: Session,
    document: Document,
    version: int,
    chunks: Sequence[Chunk],
    vectors: Vectors,
    language: str = "english",
) -> bool:
    """Replaces the document's chunks with `version`'s and marks it done; False if fenced out.

    The caller holds the row lock from `lock_document`, so concurrent runs of one document
    serialise here: a run for a superseded version, or one whose version is already live,
    writes nothing. Readers see the old chunks until this transaction commits, then the new.
    """
    if document.version != version or (
        document.status == DONE and document.indexed_version == version
    ):
        return False
    session.execute(text("DELETE FROM chunks WHERE document_id = :id"), {"id": document.id})
    ts_config = text_search_oid(session, language)
    conn = driver_connection(session)
    with conn.cursor() as cursor, cursor.copy(_COPY_CHUNKS) as copy:
        copy.set_types(_CHUNK_TYPES)
        for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
            copy.write_row(
                (
                    document.collection_id,
                    document.id,
                    version,
                    ordinal,
                    chunk.text,
                    chunk.start,
                    chunk.end,
                    chunk.token_count,
                    chunk.content_hash,
                    vector,
                    ts_config,
                )
            )
    document.indexed_version = version
    document.status = DONE
    document.error = None
    document.chunk_count = len(chunks)
    document.token_count = sum(c.token_count for c in chunks)
    return True
