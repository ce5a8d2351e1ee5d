"""Query latency through the HTTP API at ~100k chunks, HNSW against exact search, and recall@10
of HNSW against exact search on real embeddings.

    .venv/bin/groundwire up --port 8100 --data-dir /tmp/gw-bench &
    GROUNDWIRE_DATA_DIR=/tmp/gw-bench .venv/bin/python -m bench.query_latency \\
        --url http://127.0.0.1:8100 \\
        [--documents 10000] [--embedder hash:768]
        [--recall-database-url URL --recall-collection eval-scifact-dev]

Latency: a `hash` collection (256 dimensions, or as many as `hash:<n>` asks) is loaded in
bulk-load mode (10 chunks per document), its HNSW index built, then vector queries are timed;
then bulk-load mode drops the index and the same queries run as exact scans. Recall: for
SciFact claims embedded with the local model, the top 10 from the HNSW index against the exact
top 10 (index scans disabled) in a collection that `groundwire eval` filled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from groundwire.client import connect
from services.config import Settings
from services.embedding.local import LocalEmbedder
from services.models import Collection
from services.query.retrieval import search_sql

QUERIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev" / "queries.jsonl"
WORDS = [
    f"{stem}{n}"
    for stem in ("harbour", "granite", "meadow", "copper", "violin")
    for n in range(400)
]


def document(i: int, rng: np.random.Generator) -> str:
    paragraphs = [" ".join(rng.choice(WORDS, 150)) for _ in range(10)]
    return f"Document {i}\n\n" + "\n\n".join(paragraphs)


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms, p99 {cuts[98]:.1f} ms"


def timed_queries(client: httpx.Client, name: str, questions: list[str]) -> list[float]:
    latencies = []
    for question in questions:
        started = time.perf_counter()
        response = client.post(
            f"/v1/collections/{name}/query",
            json={"query": question, "k": 10, "mode": "vector", "min_score": -1},
        )
        response.raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def latency(url: str, documents: int, queries: int, embedder: str = "hash") -> None:
    rng = np.random.default_rng(3)
    name = f"latency-{uuid.uuid4().hex[:6]}"
    with connect(url, Settings(), timeout=600) as client:
        client.post(
            "/v1/collections",
            json={
                "name": name,
                "embedder": embedder,
                "chunk_tokens": 160,
                "chunk_overlap": 0,
                "bulk_load": True,
            },
        ).raise_for_status()
        started = time.perf_counter()
        batches = []
        for start in range(0, documents, 500):
            docs = [
                {"id": f"d{i}", "text": document(i, rng)}
                for i in range(start, min(start + 500, documents))
            ]
            response = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
            response.raise_for_status()
            batches.append(response.json()["batch_id"])
        while not all(client.get(f"/v1/batches/{b}").json()["finished"] for b in batches):
            time.sleep(1)
        loaded = time.perf_counter() - started
        chunks = client.get(f"/v1/collections/{name}").json()["chunks"]
        built = client.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False}).json()
        print(
            f"{chunks:,} chunks loaded in {loaded:.0f} s ({chunks / loaded:,.0f} chunks/s,"
            f" bulk-load mode); HNSW index built in {built['index_build_seconds']:.1f} s"
        )
        questions = [" ".join(rng.choice(WORDS, 8)) for _ in range(queries)]
        timed_queries(client, name, questions[:20])  # warm the caches
        hnsw = timed_queries(client, name, questions)
        client.put(f"/v1/collections/{name}/bulk-load", json={"enabled": True}).raise_for_status()
        exact = timed_queries(client, name, questions[: max(20, queries // 4)])
        print(f"HNSW  ({len(hnsw)} queries): {percentiles(hnsw)}")
        print(f"exact ({len(exact)} queries): {percentiles(exact)}")
        print(f"exact / HNSW at p50: {statistics.median(exact) / statistics.median(hnsw):.1f}x")
        client.delete(f"/v1/collections/{name}")


def recall(database_url: str, collection_name: str, queries: int) -> None:
    claims = [json.loads(line)["text"] for line in QUERIES.read_text().splitlines()[:queries]]
    vectors = LocalEmbedder(threads=2).embed(claims)
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        cid, dims, language = conn.execute(
            "SELECT id, dimensions, language FROM collections WHERE name = %s", [collection_name]
        ).fetchone() or (None, None, None)
        if cid is None:
            raise SystemExit(f"no collection {collection_name!r}")
        statement = search_sql(Collection(id=cid, dimensions=dims, language=language), "vector")
        conn.execute("SET plan_cache_mode = force_custom_plan")
        conn.execute("SET hnsw.ef_search = 50")

        def top10(vector: np.ndarray) -> list[tuple[str, int]]:
            rows = conn.execute(
                statement, {"q": vector, "text": "", "k": 10, "pool": 50, "principals": []}
            ).fetchall()
            return [(r[3], r[8]) for r in rows]  # external id, ordinal (after the space)

        approximate = [top10(v) for v in vectors]
        conn.execute("SET enable_indexscan = off")
        exact = [top10(v) for v in vectors]
    hits = [len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(approximate, exact, strict=True)]
    print(
        f"recall@10 of HNSW (ef_search 50) vs exact over {len(hits)} SciFact claims:"
        f" {statistics.mean(hits):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--embedder", default="hash", help="e.g. hash:768 for wider vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--recall-database-url", default=None)
    parser.add_argument("--recall-collection", default="eval-scifact-dev")
    args = parser.parse_args()
    if args.documents:
        latency(args.url, args.documents, args.queries, args.embedder)
    if args.recall_database_url:
        recall(args.recall_database_url, args.recall_collection, args.queries)


if __name__ == "__main__":
    main()
