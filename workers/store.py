"""The worker's writes: read and fill the embedding cache, and write many documents' chunks in
one transaction (binary COPY), fenced by version and lease owner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import BigInteger, any_, bindparam, delete, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from services.db import driver_connection
from services.embedding import Vectors
from services.models import Chunk
from services.statuses import DocumentStatus
from workers.claims import owner_keys
from workers.work import DocumentWork

COPY_COLUMNS = (
    "collection_id, document_id, doc_version, ordinal, text, char_start, char_end,"
    " token_count, content_hash, embedding, ts_config, access, location"
)
COPY_CHUNKS = f"COPY chunks ({COPY_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
# regconfig travels as its OID (regconfig's binary form is the oid's).
CHUNK_TYPES = [
    "int8", "int8", "int4", "int4", "text", "int4", "int4", "int4", "bytea", "vector", "oid",
    "text[]", "jsonb",
]  # fmt: skip

# The rows to write, locked; with each document's access list as it is now (an ingest that
# changes only the list waits for this lock, then copies it onto these chunks).
_LOCK_OWNED = text(
    """
    SELECT d.id, d.access FROM documents d
    JOIN unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[]), CAST(:owners AS uuid[]))
         AS w(id, version, owner)
      ON d.id = w.id AND d.version = w.version AND d.lease_owner = w.owner
    WHERE d.status = :processing
    ORDER BY d.id
    FOR UPDATE OF d
    """
)

_MARK_DONE = text(
    """
    UPDATE documents d
    SET status = :done, indexed_version = d.version, error = NULL, error_class = NULL,
        chunk_count = s.chunks, token_count = s.tokens, embedded_chunks = s.embedded,
        cached_chunks = s.cached, embedded_tokens = s.embedded_tokens,
        embedded_at = coalesce(s.embedded_at, now()), finished_at = now(),
        lease_owner = NULL, lease_expires_at = NULL
    FROM unnest(CAST(:ids AS bigint[]), CAST(:chunks AS int[]), CAST(:tokens AS int[]),
                CAST(:embedded AS int[]), CAST(:cached AS int[]),
                CAST(:embedded_tokens AS int[]), CAST(:embedded_at AS timestamptz[]))
         AS s(id, chunks, tokens, embedded, cached, embedded_tokens, embedded_at)
    WHERE d.id = s.id
    RETURNING d.id, extract(epoch FROM now() - d.accepted_at)::float8
    """
)


# With the collections named, only their partitions are searched.
_DELETE_CHUNKS = delete(Chunk).where(
    Chunk.collection_id == any_(bindparam("collections", type_=ARRAY(BigInteger))),
    Chunk.document_id == any_(bindparam("ids", type_=ARRAY(BigInteger))),
)


@dataclass(frozen=True)
class Written:
    """Per-document counts for the `done` row and the usage ledger."""

    embedded: int
    cached: int
    embedded_tokens: int


_TS_CONFIG_OIDS: dict[str, int] = {}


def text_search_oid(session: Session, language: str) -> int:
    """Returns the OID of a text search configuration, for the binary COPY (cached)."""
    if language not in _TS_CONFIG_OIDS:
        _TS_CONFIG_OIDS[language] = int(
            session.execute(
                text("SELECT CAST(CAST(:cfg AS regconfig) AS oid)"), {"cfg": language}
            ).scalar_one()
        )
    return _TS_CONFIG_OIDS[language]


def _jsonb(value: dict[str, Any] | None) -> Jsonb | None:
    return Jsonb(value) if value is not None else None


def store_documents(
    session: Session,
    works: Sequence[DocumentWork],
    vectors: Mapping[bytes, Vectors],
    counts: Mapping[int, Written],
    embedded_at: Any = None,
) -> dict[int, float]:
    """Replaces each still-owned document's chunks and marks it done.

    Returns the id of each document written, with its seconds from acceptance to searchable.

    Rows are locked in id order, and only a document whose version and lease owner still
    match is written: a superseded version, a run whose lease was taken over, a deleted or
    finished document writes nothing. Readers see the old chunks until the commit, then the
    new ones: never none, never two versions.
    """
    if not works:
        return {}
    locked = session.execute(
        _LOCK_OWNED, {**owner_keys(works), "processing": DocumentStatus.PROCESSING.value}
    )
    access = {int(i): list(a) if a is not None else None for i, a in locked}
    owned = set(access)
    writable = [w for w in works if w.id in owned]
    if not writable:
        return {}
    ids = [w.id for w in writable]
    collections = sorted({w.collection_id for w in writable})
    session.execute(_DELETE_CHUNKS, {"collections": collections, "ids": ids})
    copy_chunks(session, COPY_CHUNKS, writable, vectors, access)
    zero = Written(0, 0, 0)
    rows = session.execute(
        _MARK_DONE,
        {
            "ids": ids,
            "chunks": [len(w.chunks) for w in writable],
            "tokens": [sum(c.token_count for c in w.chunks) for w in writable],
            "embedded": [counts.get(w.id, zero).embedded for w in writable],
            "cached": [counts.get(w.id, zero).cached for w in writable],
            "embedded_tokens": [counts.get(w.id, zero).embedded_tokens for w in writable],
            "embedded_at": [embedded_at] * len(writable),
            "done": DocumentStatus.DONE.value,
        },
    )
    return {int(i): float(seconds) for i, seconds in rows}


def copy_chunks(
    session: Session,
    statement: str,
    works: Sequence[DocumentWork],
    vectors: Mapping[bytes, Vectors],
    access: Mapping[int, list[str] | None],
) -> None:
    """Writes the chunks of `works` with one binary COPY (`statement` names the table), each
    with its document's access list."""
    ts_configs = {w.language: text_search_oid(session, w.language) for w in works}
    conn = driver_connection(session)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(CHUNK_TYPES)
        for work in works:
            ts_config = ts_configs[work.language]
            readers = access[work.id]
            for ordinal, chunk in enumerate(work.chunks):
                copy.write_row(
                    (
                        work.collection_id,
                        work.id,
                        work.version,
                        ordinal,
                        chunk.text,
                        chunk.start,
                        chunk.end,
                        chunk.token_count,
                        chunk.content_hash,
                        vectors[chunk.content_hash],
                        ts_config,
                        readers,
                        _jsonb(work.location(ordinal)),
                    )
                )
