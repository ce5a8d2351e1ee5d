"""Pipeline overhead alone: documents/s and chunks/s through the API and real workers with the
`hash` embedder, on the load corpus, with 1 and 2 worker processes in bulk-load mode, then 2
workers with the HNSW index live. Bulk-load mode defers text search vectors and both indexes;
the time leaving it takes is printed, with load + finish against the live run.

    bash ../shared/data/load-corpus/build.sh /tmp/load-corpus
    .venv/bin/python -m bench.pipeline_hash [--corpus /tmp/load-corpus]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import database, point_this_process_at, run_queues, start_workers, stop_workers
from services.client import CONTENT_TYPES

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


def run(docs: list[dict[str, Any]], env: dict[str, str], workers: int, bulk: bool) -> str:
    run_env = {**env, **run_queues()}
    point_this_process_at(run_env)
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from services.app import create_app
    from services.db import session_scope

    with session_scope() as session:  # every run embeds every chunk itself
        session.execute(text("DELETE FROM embedding_cache"))
    pool = start_workers(workers, run_env)
    try:
        with TestClient(create_app()) as api:
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
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            failed = sum(api.get(f"/v1/batches/{b}").json()["failed"] for b in batches)
            chunks = api.get(f"/v1/collections/{name}").json()["chunks"]
            build = ""
            if bulk:
                built = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
                done = built.json()
                finish = done["text_search_seconds"] + done["index_build_seconds"]
                build = (
                    f"; leaving bulk-load mode: text search vectors and GIN index"
                    f" {done['text_search_seconds']:.1f} s + HNSW index"
                    f" {done['index_build_seconds']:.1f} s; load + finish {elapsed + finish:.1f} s"
                    f" = {chunks / (elapsed + finish):,.0f} chunks/s overall"
                )
    finally:
        stop_workers(pool)
    mode = "bulk-load mode" if bulk else "HNSW index live"
    return (
        f"{workers} worker(s), {mode}: {len(docs) / elapsed:.1f} documents/s,"
        f" {chunks / elapsed:,.0f} chunks/s ({chunks:,} chunks in {elapsed:.1f} s,"
        f" {failed} failed){build}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/load-corpus"))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    docs = load(args.corpus)[: args.limit]
    size = sum(len(d["text"].encode()) for d in docs) / 1e6
    from services.embedded import start_redis

    lines = [f"{len(docs):,} documents, {size:.0f} MB, hash embedder"]
    with database() as url, tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
        redis_server = start_redis(Path(tmp), persistent=False)
        try:
            env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
            for workers, bulk in ((1, True), (2, True), (2, False)):
                lines.append(run(docs, env, workers, bulk))
                print(lines[-1], file=sys.stderr, flush=True)
        finally:
            redis_server.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
