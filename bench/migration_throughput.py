"""Migration throughput: building a new embedding space for a collection from what is stored,
against ingesting the same documents afresh into a new collection of that space, in one run
on the same database, broker and workers.

The source collection (`hash`, 256 dimensions) is loaded once. Then, taking turns, each
repeat measures, with the target space's embedding cache emptied before each so that both
embed every chunk:

- fresh ingest: a new `hash:384` collection, the documents posted through the API, HNSW
  and GIN indexes maintained as chunks arrive (the default);
- fresh ingest, bulk-load mode: the same, indexes built once at the end (load + finish);
- migration: `POST /v1/collections/{name}/migrations {"embedder": "hash:384"}` on the
  source collection until the migration is `ready` (its indexes built once at the end and
  its threshold matched), then abandoned.

Chunks/s are the target space's chunks over the wall time; the ratio is migration against
fresh ingest. The migration tick runs in this process, as beat would send it, every 0.2 s.

Meanwhile a client queries the source collection (hybrid, through its own in-process API)
without pause: its latency idle, during the fresh ingests and during the migrations shows
what a build costs the active space (the same CPU as an ingest, nothing more).

    bash ../shared/data/load-corpus/build.sh /tmp/load-corpus
    .venv/bin/python -m bench.migration_throughput [--corpus /tmp/load-corpus] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from bench.common import (
    admin_client,
    database,
    run_queues,
    settings_for,
    start_workers,
    stop_workers,
)
from bench.pipeline_hash import load, requests_of
from groundwire.embedded import start_redis
from services.db import Database
from services.runtime import Runtime
from workers import space_driver

TARGET = "hash:384"
TARGET_SPACE = "hash:v1:384"


def empty_target_cache(url: str) -> None:
    database = Database(url)
    with database.scope() as session:
        session.execute(text("DELETE FROM embedding_cache WHERE space = :s"), {"s": TARGET_SPACE})
    database.dispose()


def post_all(api: TestClient, name: str, docs: list[dict[str, Any]]) -> list[str]:
    batches = []
    for part in requests_of(docs):
        accepted = api.post(f"/v1/collections/{name}/documents", json={"documents": part})
        assert accepted.status_code == 202, accepted.text[:300]
        batches.append(accepted.json()["batch_id"])
    return batches


def wait_batches(api: TestClient, batches: list[str]) -> None:
    while not all(api.get(f"/v1/batches/{b}").json()["finished"] for b in batches):
        time.sleep(0.1)


def fresh(api: TestClient, url: str, docs: list[dict[str, Any]], bulk: bool) -> tuple[int, float]:
    """Ingests the documents into a new collection of the target space; (chunks, seconds)."""
    empty_target_cache(url)
    name = f"fresh-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "embedder": TARGET, "bulk_load": bulk}
    assert api.post("/v1/collections", json=body).status_code == 201
    started = time.perf_counter()
    wait_batches(api, post_all(api, name, docs))
    if bulk:
        built = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
        assert built.status_code == 200, built.text
    seconds = time.perf_counter() - started
    chunks = int(api.get(f"/v1/collections/{name}").json()["chunks"])
    assert api.delete(f"/v1/collections/{name}").status_code == 204
    return chunks, seconds


def migrate(api: TestClient, url: str, source: str) -> tuple[int, float]:
    """Builds the target space of the source collection; (chunks, seconds to ready)."""
    empty_target_cache(url)
    started = time.perf_counter()
    begun = api.post(f"/v1/collections/{source}/migrations", json={"embedder": TARGET})
    assert begun.status_code == 202, begun.text
    mid = begun.json()["id"]
    while True:
        found = api.get(f"/v1/collections/{source}/migrations/{mid}").json()
        if found["status"] != "building":
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    assert found["status"] == "ready", found
    assert found["embedded"] > 0 and found["done"] == found["total"], found
    chunks = int(found["embedded"]) + int(found["cached"])
    assert api.delete(f"/v1/collections/{source}/migrations/{mid}").status_code == 200
    return chunks, seconds


class Querier:
    """Queries a collection without pause in a thread, recording latencies (ms) per phase."""

    def __init__(self, settings: Any, name: str) -> None:
        self.settings, self.name = settings, name
        self.phase = "idle"
        self.latencies: dict[str, list[float]] = {}
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        words = ["python", "module", "function", "error", "thread", "install", "config"]
        with admin_client(self.settings) as api:
            i = 0
            while not self.stop.is_set():
                i += 1
                body = {"query": f"{words[i % 7]} {words[(i * 3) % 7]}", "mode": "hybrid"}
                started = time.perf_counter()
                found = api.post(f"/v1/collections/{self.name}/query", json=body)
                ms = (time.perf_counter() - started) * 1000
                if found.status_code != 200:
                    self.failures += 1
                self.latencies.setdefault(self.phase, []).append(ms)

    def summary(self, phase: str) -> str:
        values = sorted(self.latencies.get(phase, []))
        if not values:
            return f"{phase}: no queries"
        p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        return (
            f"{phase}: {len(values):,} queries, p50 {statistics.median(values):.1f} ms,"
            f" p95 {p95:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/load-corpus"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    docs = load(args.corpus)[: args.limit]
    rates: dict[str, list[float]] = {"fresh": [], "fresh bulk-load": [], "migration": []}
    with database() as url, tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
        redis_server = start_redis(Path(tmp), persistent=False)
        env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url, **run_queues()}
        settings = settings_for(env)
        pool = start_workers(args.workers, env)
        runtime = Runtime.build(settings)
        try:
            with admin_client(settings) as api, space_driver.ticking(runtime):
                source = f"source-{uuid.uuid4().hex[:6]}"
                body = {"name": source, "embedder": "hash"}
                assert api.post("/v1/collections", json=body).status_code == 201
                wait_batches(api, post_all(api, source, docs))
                querier = Querier(settings, source)
                querier.thread.start()
                time.sleep(10)  # idle latency
                for repeat in range(args.repeats):  # taking turns, so a slow spell hits each
                    for label in rates:
                        querier.phase = label
                        if label == "migration":
                            chunks, seconds = migrate(api, url, source)
                        else:
                            chunks, seconds = fresh(api, url, docs, label != "fresh")
                        querier.phase = "between"
                        rates[label].append(chunks / seconds)
                        print(
                            f"[{repeat + 1}] {label}: {chunks:,} chunks in {seconds:.1f} s"
                            f" = {chunks / seconds:,.0f} chunks/s",
                            file=sys.stderr,
                            flush=True,
                        )
                querier.stop.set()
                querier.thread.join()
        finally:
            runtime.close()
            stop_workers(pool)
            redis_server.stop()
    medians = {label: statistics.median(r) for label, r in rates.items()}
    print(
        f"{len(docs):,} documents to {TARGET}, {args.workers} workers;"
        f" medians of {args.repeats}, chunks/s"
    )
    for label, median in medians.items():
        runs = ", ".join(f"{r:,.0f}" for r in rates[label])
        print(f"  {label:<16} {median:>8,.0f}  (runs {runs})")
    print(
        f"  migration / fresh ingest: {medians['migration'] / medians['fresh']:.2f}x;"
        f" / fresh bulk-load: {medians['migration'] / medians['fresh bulk-load']:.2f}x"
    )
    print(f"queries of the source collection meanwhile ({querier.failures} failed):")
    for phase in ("idle", "fresh", "fresh bulk-load", "migration"):
        print(f"  {querier.summary(phase)}")


if __name__ == "__main__":
    main()
