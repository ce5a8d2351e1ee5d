"""End to end with the bundled local model against the raw embedder, on the same chunks and
the same two cores, measured side by side in one run.

    .venv/bin/python -m bench.local_pipeline [--documents 600]

Raw: the chunks of SciFact abstracts embedded in this process (2 ONNX threads). End to end:
the same documents posted to the API and processed by real Celery workers into PostgreSQL,
as 1 process x 2 threads and as 2 processes x 1 thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
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
from groundwire.embedded import start_redis
from services.db import Database
from services.embedding.local import LocalEmbedder
from workers.chunking import chunk_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev" / "corpus.jsonl"
CHUNK_TOKENS, OVERLAP = 200, 25  # the `local` collection defaults


def end_to_end(
    docs: list[dict[str, Any]], env: dict[str, str], processes: int, threads: int
) -> float:
    run_env = {
        **env,
        "GROUNDWIRE_LOCAL_THREADS": str(threads),
        **run_queues(),
    }
    settings = settings_for(run_env)
    database = Database(env["DATABASE_URL"])
    with database.scope() as session:  # every run embeds every chunk itself
        session.execute(text("DELETE FROM embedding_cache"))
    database.dispose()
    pool = start_workers(processes, run_env)
    try:
        with admin_client(settings) as api:
            name = f"local-{processes}x{threads}-{uuid.uuid4().hex[:4]}"
            assert api.post("/v1/collections", json={"name": name}).status_code == 201
            started = time.perf_counter()
            accepted = api.post(f"/v1/collections/{name}/documents", json={"documents": docs})
            batch = accepted.json()["batch_id"]
            while not (state := api.get(f"/v1/batches/{batch}").json())["finished"]:
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            assert state["failed"] == 0
            chunks = api.get(f"/v1/collections/{name}").json()["chunks"]
    finally:
        stop_workers(pool)
    return chunks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=600)
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()[: args.documents]]
    docs = [{"id": str(r["id"]), "text": f"{r['title']}\n\n{r['text']}"} for r in rows]

    embedder = LocalEmbedder(threads=2, batch_size=8)
    texts = [
        c.text
        for d in docs
        for c in chunk_text(d["text"], embedder.tokenizer, CHUNK_TOKENS, OVERLAP)
    ]
    embedder.embed(texts[:8])
    started = time.perf_counter()
    embedder.embed(texts)
    raw = len(texts) / (time.perf_counter() - started)
    print(
        f"raw embedder, 1 process x 2 threads: {raw:.1f} chunks/s ({len(texts)} chunks)",
        file=sys.stderr,
    )

    results = []
    with database() as url, tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
        redis_server = start_redis(Path(tmp), persistent=False)
        try:
            env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
            for processes, threads in ((1, 2), (2, 1)):
                rate = end_to_end(docs, env, processes, threads)
                results.append((processes, threads, rate))
                print(f"end to end {processes}x{threads}: {rate:.1f} chunks/s", file=sys.stderr)
        finally:
            redis_server.stop()
    print(f"{len(docs)} SciFact documents, {len(texts)} chunks of <= {CHUNK_TOKENS} word pieces")
    print(f"raw embedder (1 process x 2 threads): {raw:.1f} chunks/s")
    for processes, threads, rate in results:
        print(
            f"end to end, {processes} worker process(es) x {threads} thread(s):"
            f" {rate:.1f} chunks/s = {rate / raw:.2f}x raw"
        )


if __name__ == "__main__":
    main()
