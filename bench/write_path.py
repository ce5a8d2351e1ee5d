"""Write path: chunks/s through Groundwire's store (binary COPY, one transaction per
embedding batch of documents, as the embed stage writes them) against naive
one-row-per-INSERT commits, the same vectors into the same table: once in bulk-load mode
(no indexes and no text search vectors while loading, for both) and once with the HNSW and
GIN indexes live. Then the time bulk-load mode saves: load + finishing (text search vectors,
GIN and HNSW builds), against loading with everything live. Last, the ceilings: how fast
this server writes the same rows with no index, constraint or trigger at all, which bounds
any ratio a write path can reach here.

    .venv/bin/python -m bench.write_path [--rows 20000] [--naive-rows 1000] [--repeats 3]
        [--batch-chunks 256]
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from sqlalchemy import text

from bench.common import database, median_of
from services.collections.service import finish_bulk_load
from services.db import Database, libpq_url
from services.models import Collection, Document
from services.statuses import DocumentStatus
from services.vectors import hnsw_index_ddl, partition_ddl, text_index_ddl
from workers.chunking import Chunk
from workers.claims import claim_documents
from workers.store import Written, store_documents
from workers.work import DocumentWork

DIMS = 384
CHUNKS_PER_DOC = 20


def make_collection(db: Database, name: str, bulk: bool) -> int:
    with db.scope() as session:
        workspace = session.execute(
            text("SELECT id FROM workspaces WHERE name = 'default'")
        ).scalar_one()
        collection = Collection(
            workspace_id=workspace, name=name, embedder="local", dimensions=DIMS,
            max_input_tokens=254,
            chunk_tokens=200, chunk_overlap=0, threshold=0.4, language="english",
            bulk_load=bulk,
        )  # fmt: skip
        session.add(collection)
        session.flush()
        session.execute(text(partition_ddl(collection.id).as_string()))
        if not bulk:
            session.execute(text(text_index_ddl(collection.id).as_string()))
            ddl = hnsw_index_ddl(collection.id, DIMS)
            assert ddl is not None
            session.execute(text(ddl.as_string()))
        return collection.id


def make_documents(db: Database, collection_id: int, count: int) -> list[int]:
    with db.scope() as session:
        docs = [
            Document(collection_id=collection_id, external_id=f"d{i}", content="x",
                     content_hash="h", metadata_={}, status=DocumentStatus.QUEUED)
            for i in range(count)
        ]  # fmt: skip
        session.add_all(docs)
        session.flush()
        return [d.id for d in docs]


def workload(rows: int, rng: np.random.Generator) -> tuple[list[Chunk], np.ndarray]:
    vectors = rng.standard_normal((rows, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = ["postgres", "vector", "index", "chunk", "worker", "queue", "grounding", "citation"]
    chunks = [
        Chunk(" ".join(words[(i + j) % len(words)] for j in range(150)) + f" n{i}", 0, 10, 150)
        for i in range(rows)
    ]
    return chunks, vectors


def store_load(
    db: Database, rows: int, rng: np.random.Generator, tag: str, bulk: bool, batch_chunks: int = 256
) -> tuple[int, float]:
    """Loads `rows` chunks through the store in batches; returns (collection id, seconds)."""
    collection_id = make_collection(db, f"store-{tag}", bulk)
    doc_ids = make_documents(db, collection_id, rows // CHUNKS_PER_DOC)
    chunks, vectors = workload(rows, rng)
    owner = uuid.uuid4()
    with db.scope() as session:
        claim_documents(session, [(d, 1) for d in doc_ids], owner, 3600)
    works = [
        DocumentWork(doc_id, 1, owner, collection_id, "local", DIMS, "english",
                     tuple(chunks[n * CHUNKS_PER_DOC : (n + 1) * CHUNKS_PER_DOC]))
        for n, doc_id in enumerate(doc_ids)
    ]  # fmt: skip
    by_hash = {c.content_hash: v for c, v in zip(chunks, vectors, strict=True)}
    per_batch = max(1, batch_chunks // CHUNKS_PER_DOC)
    started = time.perf_counter()
    for start in range(0, len(works), per_batch):
        batch = works[start : start + per_batch]
        counts = {w.id: Written(len(w.chunks), 0, 0) for w in batch}
        with db.scope() as session:
            assert len(store_documents(session, batch, by_hash, counts)) == len(batch)
    elapsed = time.perf_counter() - started
    with db.scope() as session:
        done = session.execute(
            text("SELECT count(*) FROM documents WHERE collection_id = :c AND status = :s"),
            {"c": collection_id, "s": DocumentStatus.DONE},
        ).scalar_one()
        assert done == len(doc_ids)
    return collection_id, elapsed


def build_index(db: Database, collection_id: int) -> float:
    """Leaves bulk-load mode: text search vectors, GIN and HNSW indexes; returns seconds."""
    finished = finish_bulk_load(db, collection_id)
    assert finished.index_build_seconds is not None
    return finished.text_search_seconds + finished.index_build_seconds


def naive_rate(db: Database, rows: int, rng: np.random.Generator, tag: str, bulk: bool) -> float:
    """Rows/s inserting one chunk per INSERT, each committed on its own."""
    url = db.url
    collection_id = make_collection(db, f"naive-{tag}", bulk)
    doc_ids = make_documents(db, collection_id, max(1, rows // CHUNKS_PER_DOC))
    chunks, vectors = workload(rows, rng)
    with psycopg.connect(libpq_url(url)) as conn:
        register_vector(conn)
        started = time.perf_counter()
        for i, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
            conn.execute(
                "INSERT INTO chunks (collection_id, document_id, doc_version, ordinal, text,"
                " char_start, char_end, token_count, content_hash, embedding)"
                " VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, %s)",
                [collection_id, doc_ids[i // CHUNKS_PER_DOC], i, chunk.text, chunk.start,
                 chunk.end, chunk.token_count, chunk.content_hash, vector],
            )  # fmt: skip
            conn.commit()
        return rows / (time.perf_counter() - started)


def ceilings(url: str, collection_id: int) -> list[tuple[str, float]]:
    """Rows/s of the fastest ways this server can write a collection's chunk rows at all.

    Into a copy of the chunks table with no index, constraint or trigger: binary COPY of
    the same rows from this process, logged and unlogged (no WAL), and the rows copied inside
    the server (INSERT ... SELECT: no client, no parsing, no WAL). No write path can be
    faster than these on this machine.
    """
    from workers.store import CHUNK_TYPES, COPY_CHUNKS

    columns = (
        "collection_id, document_id, doc_version, ordinal, text, char_start, char_end,"
        " token_count, content_hash, embedding, ts_config, access"
    )
    results = []
    with psycopg.connect(libpq_url(url)) as conn:
        register_vector(conn)
        rows = conn.execute(
            f"SELECT {columns.replace('ts_config', 'ts_config::oid')} FROM chunks"
            " WHERE collection_id = %s",
            [collection_id],
        ).fetchall()
        for label, kind in (("binary COPY", ""), ("binary COPY, unlogged", "UNLOGGED")):
            conn.execute("DROP TABLE IF EXISTS ceiling")
            conn.execute(
                f"CREATE {kind} TABLE ceiling"
                " (LIKE chunks INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE)"
                " WITH (toast_tuple_target = 8160)"
            )
            conn.commit()
            started = time.perf_counter()
            into_ceiling = COPY_CHUNKS.replace("COPY chunks", "COPY ceiling")
            with conn.cursor() as cursor, cursor.copy(into_ceiling) as copy:
                copy.set_types(CHUNK_TYPES)
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            results.append((label, len(rows) / (time.perf_counter() - started)))
        conn.execute("TRUNCATE ceiling")
        conn.commit()
        started = time.perf_counter()
        conn.execute(
            f"INSERT INTO ceiling ({columns}) SELECT {columns} FROM chunks"
            " WHERE collection_id = %s",
            [collection_id],
        )
        conn.commit()
        results.append(
            (
                "INSERT ... SELECT inside the server, unlogged",
                len(rows) / (time.perf_counter() - started),
            )
        )
        conn.execute("DROP TABLE ceiling")
        conn.commit()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--naive-rows", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-chunks", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    tags = iter(range(1000))
    lines = [f"chunks of {DIMS}-dim float32 vectors; naive one-row commits on {args.naive_rows:,}"]
    with database() as url:
        db = Database(url)
        modes = ((True, "bulk-load mode (deferred)"), (False, "text search and indexes live"))
        for bulk, label in modes:
            # With an index live, inserting costs more as the index grows: both sides then
            # load the same number of rows into an empty collection.
            rows = args.rows if bulk else args.naive_rows

            def store() -> float:
                _, seconds = store_load(
                    db,
                    rows,  # noqa: B023
                    rng,
                    str(next(tags)),
                    bulk,  # noqa: B023
                    args.batch_chunks,
                )
                return rows / seconds  # noqa: B023

            def naive() -> float:
                return naive_rate(db, args.naive_rows, rng, str(next(tags)), bulk)  # noqa: B023

            fast, slow = median_of(args.repeats, store), median_of(args.repeats, naive)
            if bulk:
                naive_bulk = slow
            lines.append(
                f"{label}: store {fast:,.0f} rows/s ({rows:,} rows), naive {slow:,.0f} rows/s,"
                f" ratio {fast / slow:.1f}x (medians of {args.repeats})"
            )
        bulk_id, bulk_load_s = store_load(db, args.rows, rng, "saved-bulk", True)
        build_s = build_index(db, bulk_id)
        _, live_s = store_load(db, args.rows, rng, "saved-live", False)
        lines.append(
            f"loading {args.rows:,} chunks: bulk {bulk_load_s:.1f} s + finishing {build_s:.1f} s"
            f" = {bulk_load_s + build_s:.1f} s, against {live_s:.1f} s with everything live"
            f" ({live_s / (bulk_load_s + build_s):.1f}x faster)"
        )
        lines.append(
            f"ceilings, the same {args.rows:,} rows into a bare copy of the table"
            f" (100x the naive bulk-mode rate would be {100 * naive_bulk:,.0f} rows/s):"
        )
        for label, rate in ceilings(url, bulk_id):
            lines.append(f"  {label}: {rate:,.0f} rows/s = {rate / naive_bulk:.1f}x naive")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
