"""Query latency with one collection and with a thousand, side by side in one run, and the
two ways to store many collections' vectors that were weighed.

    .venv/bin/python -m bench.collections_scale [--documents 2000] [--collections 1000]

Starts embedded PostgreSQL and Redis and two workers. Loads a `hash` collection of
`--documents` documents x 10 chunks, times vector and hybrid queries through the in-process
API, then adds `--collections` - 1 more collections of one document each and times the same
queries again: with chunks partitioned by collection (what Groundwire does) the planner and
every write see one collection's table and indexes, whatever their number.

Then the alternatives, on copies of the same rows in plain tables, timed by SQL alone:
- `partial`: one table with a partial HNSW index per collection (Groundwire before
  partitioning): planning grows with the number of indexes;
- `shared`: one HNSW index for every collection of the embedding space, the collection a
  filter of the scan: a small collection's query must walk past everyone else's vectors.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from bench.common import (
    admin_client,
    database,
    run_queues,
    settings_for,
    start_workers,
    stop_workers,
)
from groundwire.embedded import start_redis
from services.db import libpq_url
from services.embedding.hash import HashEmbedder

WORDS = [
    f"{stem}{n}"
    for stem in ("harbour", "granite", "meadow", "copper", "violin")
    for n in range(400)
]
BODY = {"k": 10, "min_score": -1}


def text_of(rng: np.random.Generator, paragraphs: int = 10) -> str:
    return "\n\n".join(" ".join(rng.choice(WORDS, 150)) for _ in range(paragraphs))


def wait(api: Any, batches: list[str]) -> None:
    while not all(api.get(f"/v1/batches/{b}").json()["finished"] for b in batches):
        time.sleep(0.5)


def api_p50(api: Any, name: str, questions: list[str], mode: str) -> float:
    times = []
    for question in questions[:10] + questions:
        started = time.perf_counter()
        api.post(
            f"/v1/collections/{name}/query", json={**BODY, "query": question, "mode": mode}
        ).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[10:])


def sql_p50(
    conn: psycopg.Connection[Any], statement: str, vectors: list[Any]
) -> tuple[float, float]:
    """Median execution and planning time (ms) of `statement` over the vectors."""
    run, plan = [], []
    for vector in vectors[:5] + vectors:
        row = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", {"q": vector}).fetchone()
        assert row is not None
        found = row[0][0]
        run.append(float(found["Execution Time"]))
        plan.append(float(found["Planning Time"]))
    return statistics.median(run[5:]), statistics.median(plan[5:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(9)
    questions = [" ".join(rng.choice(WORDS, 8)) for _ in range(args.queries)]
    lines: list[str] = []
    with database() as url, tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
        redis_server = start_redis(Path(tmp), persistent=False)
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis_server.url,
            **run_queues(),
            "GROUNDWIRE_WORKSPACE_COLLECTION_QUOTA": str(args.collections + 10),
        }
        settings = settings_for(env)
        pool = start_workers(2, env)
        try:
            with admin_client(settings) as api:
                spec = {"embedder": "hash", "chunk_tokens": 160, "chunk_overlap": 0}
                assert api.post("/v1/collections", json={**spec, "name": "main"}).status_code == 201
                batches = []
                for start in range(0, args.documents, 500):
                    docs = [
                        {"id": f"d{i}", "text": text_of(rng)}
                        for i in range(start, min(start + 500, args.documents))
                    ]
                    batches.append(
                        api.post("/v1/collections/main/documents", json={"documents": docs}).json()[
                            "batch_id"
                        ]
                    )
                wait(api, batches)
                chunks = api.get("/v1/collections/main").json()["chunks"]
                one = {m: api_p50(api, "main", questions, m) for m in ("vector", "hybrid")}
                started = time.perf_counter()
                batches = []
                for n in range(1, args.collections):
                    name = f"small-{n}"
                    assert (
                        api.post("/v1/collections", json={**spec, "name": name}).status_code == 201
                    )
                    doc = {"id": "only", "text": text_of(rng, 1)}
                    batches.append(
                        api.post(
                            f"/v1/collections/{name}/documents", json={"documents": [doc]}
                        ).json()["batch_id"]
                    )
                wait(api, batches)
                made = time.perf_counter() - started
                many = {m: api_p50(api, "main", questions, m) for m in ("vector", "hybrid")}
                small = api_p50(api, "small-1", questions, "vector")
        finally:
            stop_workers(pool)
            redis_server.stop()
        lines.append(
            f"main: {chunks:,} chunks; {args.collections - 1} more collections of one"
            f" document made in {made:.0f} s; medians of {args.queries} queries (k 10)"
        )
        for mode in ("vector", "hybrid"):
            lines.append(
                f"  {mode} through the API: 1 collection {one[mode]:.2f} ms,"
                f" {args.collections} collections {many[mode]:.2f} ms"
                f" ({many[mode] / one[mode]:.2f}x; goal <= 1.3x)"
            )
        lines.append(
            f"  vector, a one-document collection among {args.collections}: {small:.2f} ms"
        )
        lines.extend(alternatives(url, questions, args.collections))
    print("\n".join(lines))


def alternatives(url: str, questions: list[str], collections: int) -> list[str]:
    """The same rows in plain tables: a partial index per collection, or one shared index."""
    embedder = HashEmbedder()
    vectors = [embedder.embed([q])[0] for q in questions]
    out = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        register_vector(conn)
        main = conn.execute("SELECT id FROM collections WHERE name = 'main'").fetchone()
        small = conn.execute("SELECT id FROM collections WHERE name = 'small-1'").fetchone()
        assert main is not None and small is not None
        ids = [int(r[0]) for r in conn.execute("SELECT id FROM collections ORDER BY id")]
        conn.execute("SET max_parallel_maintenance_workers = 0")
        for kind in ("partitioned", "partial", "shared"):
            if kind != "partitioned":
                conn.execute("DROP TABLE IF EXISTS alt")
                conn.execute("CREATE TABLE alt AS SELECT id, collection_id, embedding FROM chunks")
                if kind == "partial":
                    for cid in ids:
                        conn.execute(
                            f"CREATE INDEX ON alt USING hnsw ((embedding::vector(256))"
                            f" vector_cosine_ops) WHERE collection_id = {cid}"
                        )
                else:
                    conn.execute(
                        "CREATE INDEX ON alt USING hnsw ((embedding::vector(256))"
                        " vector_cosine_ops)"
                    )
                conn.execute("ANALYZE alt")
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            for label, cid in (("main", int(main[0])), ("one-document", int(small[0]))):
                table = f"chunks_c{cid}" if kind == "partitioned" else "alt"
                where = "" if kind == "partitioned" else f"WHERE collection_id = {cid}"
                statement = (
                    f"SELECT id FROM {table} {where} ORDER BY embedding::vector(256)"
                    f" <=> %(q)s::vector(256) LIMIT 10"
                )
                run, plan = sql_p50(conn, statement, vectors[:50])
                found = conn.execute(statement, {"q": vectors[0]}).fetchall()
                out.append(
                    f"  {kind:11} {label:12} collection: execution {run:.2f} ms, planning"
                    f" {plan:.2f} ms, {len(found)} of 10 found"
                )
        conn.execute("DROP TABLE IF EXISTS alt")
    return [f"alternatives, SQL only, {collections} collections:", *out]


if __name__ == "__main__":
    main()
