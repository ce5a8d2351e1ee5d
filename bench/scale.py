"""Cost as a collection grows: ingest, index build, size, memory, query latency through HTTP and
HNSW recall at 10k, 100k and 1M chunks (`--sizes`), with `vector` and `halfvec` storage side
by side on the same chunks, in one run.

The chunks are synthetic passages of 60 words with the structure of real text: each is about
one of 500 topics, and draws 80% of its words from that topic's own 200 words and the rest from
the whole 20,000-word vocabulary, both Zipf-distributed (uniformly random words would make
every vector equidistant, which no real corpus is and on which no index can find neighbours).
Questions are 6 words of one topic. They are embedded with `hash:384`, written through the
workers' write path (one binary COPY per batch, the collection
in bulk-load mode); leaving bulk-load mode (`PUT .../bulk-load {"enabled": false}`) computes
the text search vectors and builds the GIN and HNSW indexes, timed. At each size, for each
storage:

- ingest: chunks/s of the write path (embedding included), for the chunks added;
- index build: seconds leaving bulk-load mode, over all the chunks;
- sizes: the collection's partition with its indexes, the HNSW index alone, the database;
- PostgreSQL peak RSS: the largest resident set of its processes, sampled through the load,
  the build and the queries (shared buffers counted once per process that touched them);
- queries through HTTP (the API as `groundwire api` runs it), vector and hybrid, k = 10:
  p50 / p95 / p99 over `--queries` questions after a warm-up;
- recall@10 of the HNSW search against exact search (the same statement with index scans
  off) over 100 questions.

    .venv/bin/python -m bench.scale [--sizes 10000,100000,1000000] [--queries 300]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import psutil
import psycopg
from pgvector.psycopg import register_vector
from sqlalchemy import text

from bench.api_process import HEADERS, running_api, services
from services.db import Database
from services.embedding.hash import HashEmbedder
from services.models import Collection
from services.query.retrieval import candidate_pool, search_sql
from services.vectors import hnsw_index_name, partition_name
from workers.chunking import Chunk
from workers.store import COPY_CHUNKS, copy_chunks
from workers.work import DocumentWork

DIMS = 384
CHUNKS_PER_DOCUMENT = 10
BATCH = 5000
VOCABULARY = 20_000
TOPICS = 500
TOPIC_WORDS = 200


class Text:
    """Passages and questions about topics (see the module's docstring)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = np.array([f"w{n}" for n in range(VOCABULARY)])
        self.topics = [
            self.rng.choice(VOCABULARY, TOPIC_WORDS, replace=False) for _ in range(TOPICS)
        ]
        ranks = np.arange(1, TOPIC_WORDS + 1)
        self.topic_p = (1 / ranks) / (1 / ranks).sum()
        ranks = np.arange(1, VOCABULARY + 1)
        self.common_p = (1 / ranks) / (1 / ranks).sum()

    def _words(self, count: int, share: float) -> str:
        topic = self.topics[self.rng.integers(TOPICS)]
        own = self.rng.random(count) < share
        picked = np.where(
            own,
            topic[self.rng.choice(TOPIC_WORDS, count, p=self.topic_p)],
            self.rng.choice(VOCABULARY, count, p=self.common_p),
        )
        return " ".join(self.words[picked])

    def passage(self) -> str:
        return self._words(60, 0.8)

    def question(self) -> str:
        return self._words(6, 1.0)


@dataclass
class Measured:
    storage: str
    chunks: int
    ingest_per_s: float
    build_s: float
    partition_bytes: int
    hnsw_bytes: int
    database_bytes: int
    postgres_peak_rss: int
    vector_ms: tuple[float, float, float]
    hybrid_ms: tuple[float, float, float]
    recall: float


class PostgresRss:
    """The largest resident set of any PostgreSQL process, sampled in a thread."""

    def __init__(self, database_url: str) -> None:
        with psycopg.connect(database_url) as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert pid is not None
        postmaster = psutil.Process(int(pid[0])).parent()
        assert postmaster is not None
        self.postmaster = postmaster
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                for process in [self.postmaster, *self.postmaster.children()]:
                    self.peak = max(self.peak, process.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    def take(self) -> int:
        """The peak since the last take."""
        peak, self.peak = self.peak, 0
        return peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def make_collection(api_url: str, storage: str) -> str:
    name = f"scale-{storage}-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "embedder": f"hash:{DIMS}", "bulk_load": True, "vector_storage": storage}
    httpx.post(
        f"{api_url}/v1/collections", json=body, headers=HEADERS, timeout=60
    ).raise_for_status()
    return name


def load(db: Database, collection: Collection, texts: list[str], start: int) -> float:
    """Writes the passages as documents of CHUNKS_PER_DOCUMENT chunks; returns seconds."""
    embedder = HashEmbedder(DIMS)
    started = time.perf_counter()
    for offset in range(0, len(texts), BATCH):
        batch = texts[offset : offset + BATCH]
        vectors = embedder.embed(batch)
        with db.scope() as session:
            docs = len(batch) // CHUNKS_PER_DOCUMENT
            first = start + offset
            ids = session.execute(
                text(
                    "INSERT INTO documents (collection_id, external_id, content, content_hash,"
                    " metadata, version, indexed_version, status, attempts, chunk_count,"
                    " token_count, embedded_chunks, cached_chunks, embedded_tokens)"
                    " SELECT :c, 'd' || n, '', 'h', '{}', 1, 1, 'done', 1, :per, :per * 60,"
                    " :per, 0, 0 FROM generate_series(CAST(:a AS bigint), CAST(:b AS bigint)) AS n"
                    " RETURNING id"
                ),
                {
                    "c": collection.id,
                    "per": CHUNKS_PER_DOCUMENT,
                    "a": first // CHUNKS_PER_DOCUMENT,
                    "b": first // CHUNKS_PER_DOCUMENT + docs - 1,
                },
            ).scalars()
            works = []
            by_hash = {}
            for d, doc_id in enumerate(ids):
                chunks = []
                for j in range(CHUNKS_PER_DOCUMENT):
                    body = batch[d * CHUNKS_PER_DOCUMENT + j]
                    chunk = Chunk(body, 0, len(body), 60)
                    by_hash[chunk.content_hash] = vectors[d * CHUNKS_PER_DOCUMENT + j]
                    chunks.append(chunk)
                works.append(
                    DocumentWork(int(doc_id), 1, uuid.uuid4(), collection.id, f"hash:{DIMS}",
                                 DIMS, "english", tuple(chunks))
                )  # fmt: skip
            copy_chunks(session, COPY_CHUNKS, works, by_hash, {w.id: None for w in works})
    return time.perf_counter() - started


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def timed(client: httpx.Client, name: str, questions: list[str], mode: str) -> list[float]:
    latencies = []
    for question in questions:
        started = time.perf_counter()
        response = client.post(
            f"/v1/collections/{name}/query", json={"query": question, "k": 10, "mode": mode}
        )
        response.raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def recall(database_url: str, collection: Collection, questions: list[str]) -> float:
    vectors = HashEmbedder(DIMS).embed(questions)
    statement = search_sql(collection, "vector")
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        conn.execute("SET plan_cache_mode = force_custom_plan")
        conn.execute(f"SET hnsw.ef_search = {max(40, candidate_pool(10))}")
        conn.execute("SET hnsw.iterative_scan = relaxed_order")

        def top10(vector: Any) -> set[str]:
            values = {
                "q": vector,
                "text": "",
                "k": 10,
                "pool": candidate_pool(10),
                "principals": [],
            }
            return {f"{r[3]}:{r[8]}" for r in conn.execute(statement, values) if r[1] is not None}

        approximate = [top10(v) for v in vectors]
        conn.execute("SET enable_indexscan = off")
        exact = [top10(v) for v in vectors]
    return statistics.mean(
        len(a & e) / max(1, len(e)) for a, e in zip(approximate, exact, strict=True)
    )


@contextmanager
def collection_of(db: Database, name: str) -> Iterator[Collection]:
    with db.scope() as session:
        found = session.query(Collection).filter_by(name=name).one()
        session.expunge(found)
    yield found


def sizes(db: Database, collection: Collection) -> tuple[int, int, int]:
    with db.scope() as session:
        row = session.execute(
            text(
                "SELECT pg_total_relation_size(CAST(:t AS regclass)),"
                " coalesce(pg_relation_size(to_regclass(:i)), 0),"
                " pg_database_size(current_database())"
            ),
            {"t": partition_name(collection.id), "i": hnsw_index_name(collection.id)},
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    targets = [int(s) for s in args.sizes.split(",")]
    corpus = Text(11)
    questions = [corpus.question() for _ in range(args.queries + 50)]
    results: list[Measured] = []
    with services() as (env, logs), running_api("serve", env, logs) as api:
        db = Database(env["DATABASE_URL"])
        rss = PostgresRss(env["DATABASE_URL"])
        names = {storage: make_collection(api.url, storage) for storage in ("vector", "halfvec")}
        loaded = 0
        client = httpx.Client(base_url=api.url, headers=HEADERS, timeout=600)
        for target in targets:
            texts = [corpus.passage() for _ in range(target - loaded)]
            for storage, name in names.items():
                with collection_of(db, name) as collection:
                    if loaded:  # back into bulk-load mode: the indexes go, built again below
                        client.put(f"/v1/collections/{name}/bulk-load", json={"enabled": True})
                    rss.take()
                    seconds = load(db, collection, texts, loaded)
                    started = time.perf_counter()
                    built = client.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
                    built.raise_for_status()
                    build_s = time.perf_counter() - started
                    timed(client, name, questions[:50], "hybrid")  # warm-up
                    vector = timed(client, name, questions[50:], "vector")
                    hybrid = timed(client, name, questions[50:], "hybrid")
                    partition, hnsw, database_bytes = sizes(db, collection)
                    found = recall(env["DATABASE_URL"], collection, questions[50:150])
                    results.append(
                        Measured(storage, target, len(texts) / seconds, build_s, partition, hnsw,
                                 database_bytes, rss.take(), percentiles(vector),
                                 percentiles(hybrid), found)
                    )  # fmt: skip
                    print(line(results[-1]), flush=True)
            loaded = target
        rss.close()
        client.close()
        db.dispose()
    print("\nhalfvec against vector, same chunks:")
    for target in targets:
        full, half = (next(r for r in results if r.chunks == target and r.storage == s)
                      for s in ("vector", "halfvec"))  # fmt: skip
        # Half precision saves the vectors' 2 bytes a dimension (and packs more nodes a page);
        # the graph's neighbour lists and the tuple headers stay.
        per_full, per_half = full.hnsw_bytes / target, half.hnsw_bytes / target
        print(
            f"  {target:>9,} chunks: HNSW index {half.hnsw_bytes / full.hnsw_bytes:.2f}x"
            f" ({per_full:,.0f} -> {per_half:,.0f} bytes a chunk, of which the vector is"
            f" {4 * DIMS:,} -> {2 * DIMS:,}), partition"
            f" {half.partition_bytes / full.partition_bytes:.2f}x,"
            f" recall@10 {half.recall - full.recall:+.3f}, hybrid p50"
            f" {half.hybrid_ms[0] / full.hybrid_ms[0]:.2f}x"
        )


def line(m: Measured) -> str:
    mib = 1024 * 1024
    return (
        f"{m.chunks:>9,} chunks {m.storage:<7}: ingest {m.ingest_per_s:,.0f} chunks/s,"
        f" build {m.build_s:.1f} s, partition {m.partition_bytes / mib:,.0f} MiB (HNSW"
        f" {m.hnsw_bytes / mib:,.0f} MiB), database {m.database_bytes / mib:,.0f} MiB,"
        f" PostgreSQL peak RSS {m.postgres_peak_rss / mib:,.0f} MiB; vector p50/p95/p99"
        f" {m.vector_ms[0]:.1f}/{m.vector_ms[1]:.1f}/{m.vector_ms[2]:.1f} ms, hybrid"
        f" {m.hybrid_ms[0]:.1f}/{m.hybrid_ms[1]:.1f}/{m.hybrid_ms[2]:.1f} ms;"
        f" recall@10 {m.recall:.3f}"
    )


if __name__ == "__main__":
    main()
