"""Pipeline overhead alone: documents/s and chunks/s through the API and real workers with the
`hash` embedder, on the load corpus, with 1 and 2 worker processes in bulk-load mode, then 2
workers with the HNSW index live. Bulk-load mode defers text search vectors and both indexes;
the time leaving it takes is printed, with load + finish against the live run.

    bash ../shared/data/load-corpus/build.sh /tmp/load-corpus
    .venv/bin/python -m bench.pipeline_hash [--corpus /tmp/load-corpus] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    admin_client,
    database,
    run_queues,
    settings_for,
    start_workers,
    stop_workers,
)
from groundwire.client import CONTENT_TYPES
from groundwire.embedded import start_redis
from services.db import Database

MAX_REQUEST_BYTES = 32 * 1024 * 1024


def load(corpus: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(corpus.rglob("*")):
        suffix = path.suffix.lower() if not path.name.endswith(".rst.txt") else ".rst"
        if path.is_file() and suffix in CONTENT_TYPES:
            text = path.read_text(encoding="utf-8", errors="replace").replace("\x00", "")
            if text.strip():
                rel = path.relative_to(corpus).as_posix()
                docs.append({"id": rel, "text": text, "content_type": CONTENT_TYPES[suffix]})
    return docs


def requests_of(docs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for doc in docs:
        doc_size = len(doc["text"].encode()) + 256
        if batches[-1] and (len(batches[-1]) == 1000 or size + doc_size > MAX_REQUEST_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(doc)
        size += doc_size
    return batches


@dataclass(frozen=True)
class Run:
    """One load: chunks written, seconds loading, seconds leaving bulk-load mode (if bulk)."""

    documents: int
    chunks: int
    seconds: float
    finish: float | None
    failed: int

    def line(self) -> str:
        text = (
            f"{self.documents / self.seconds:.1f} documents/s,"
            f" {self.chunks / self.seconds:,.0f} chunks/s ({self.chunks:,} chunks in"
            f" {self.seconds:.1f} s, {self.failed} failed)"
        )
        if self.finish is not None:
            total = self.seconds + self.finish
            text += (
                f"; leaving bulk-load mode {self.finish:.1f} s; load + finish {total:.1f} s"
                f" = {self.chunks / total:,.0f} chunks/s overall"
            )
        return text


def run(docs: list[dict[str, Any]], env: dict[str, str], workers: int, bulk: bool) -> Run:
    run_env = {**env, **run_queues()}
    settings = settings_for(run_env)
    database = Database(env["DATABASE_URL"])
    with database.scope() as session:  # every run embeds every chunk itself
        session.execute(text("DELETE FROM embedding_cache"))
    database.dispose()
    pool = start_workers(workers, run_env)
    try:
        with admin_client(settings) as api:
            name = f"load-{workers}-{uuid.uuid4().hex[:4]}"
            spec = {"name": name, "embedder": "hash", "bulk_load": bulk}
            assert api.post("/v1/collections", json=spec).status_code == 201
            started = time.perf_counter()
            batches = []
            for part in requests_of(docs):
                accepted = api.post(f"/v1/collections/{name}/documents", json={"documents": part})
                assert accepted.status_code == 202, accepted.text[:300]
                batches.append(accepted.json()["batch_id"])
            while not all(api.get(f"/v1/batches/{b}").json()["finished"] for b in batches):
                time.sleep(0.1)  # the end is known to within 0.1 s
            elapsed = time.perf_counter() - started
            failed = sum(api.get(f"/v1/batches/{b}").json()["failed"] for b in batches)
            chunks = api.get(f"/v1/collections/{name}").json()["chunks"]
            finish = None
            if bulk:
                started = time.perf_counter()
                built = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
                assert built.status_code == 200, built.text
                finish = time.perf_counter() - started
    finally:
        stop_workers(pool)
    return Run(len(docs), chunks, elapsed, finish, failed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/load-corpus"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    docs = load(args.corpus)[: args.limit]
    size = sum(len(d["text"].encode()) for d in docs) / 1e6

    configs = {
        (1, True): "1 worker, bulk-load mode",
        (2, True): "2 workers, bulk-load mode",
        (2, False): "2 workers, HNSW index live",
    }
    runs: dict[tuple[int, bool], list[Run]] = {config: [] for config in configs}
    with database() as url, tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
        redis_server = start_redis(Path(tmp), persistent=False)
        try:
            env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
            # Configurations take turns, so a slow spell of the machine hits each of them.
            for repeat in range(args.repeats):
                for (workers, bulk), label in configs.items():
                    result = run(docs, env, workers, bulk)
                    runs[workers, bulk].append(result)
                    print(f"[{repeat + 1}] {label}: {result.line()}", file=sys.stderr, flush=True)
        finally:
            redis_server.stop()
    lines = [f"{len(docs):,} documents, {size:.0f} MB, hash embedder; medians of {args.repeats}"]
    for config, label in configs.items():
        rates = [r.chunks / r.seconds for r in runs[config]]
        line = (
            f"{label}: {statistics.median(rates):,.0f} chunks/s"
            f" (runs {', '.join(f'{rate:,.0f}' for rate in rates)})"
        )
        finishes = [r.finish for r in runs[config] if r.finish is not None]
        if finishes:
            overall = [r.chunks / (r.seconds + (r.finish or 0)) for r in runs[config]]
            line += (
                f"; leaving bulk-load mode {statistics.median(finishes):.1f} s;"
                f" load + finish {statistics.median(overall):,.0f} chunks/s overall"
            )
        lines.append(line)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
