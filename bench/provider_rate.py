"""The OpenAI path under a provider rate limit: achieved tokens/min against the limit, and the
429s seen, with 1, 2 and 4 worker processes sharing one budget.

    .venv/bin/python -m bench.provider_rate [--documents 1500] [--rpm 1200] [--tpm 300000]

Each run starts a fresh local OpenAI-compatible server that enforces the limits as OpenAI does
(per-minute buckets, 429 with Retry-After) with 50 ms latency, real Celery workers configured
with the same budget, and ingests SciFact abstracts through the API. A token bucket allows its
capacity at once plus its rate after that, so "share of limit" is tokens sent divided by
(capacity + rate x elapsed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    admin_client,
    database,
    run_queues,
    settings_for,
    start_workers,
    stop_workers,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev" / "corpus.jsonl"


def start_fake(rpm: int, tpm: int, latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--rpm", str(rpm), "--tpm", str(tpm),
         "--latency", str(latency), "--dimensions", "64"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def run(workers: int, docs: list[dict[str, Any]], base_env: dict[str, str], args: Any) -> str:
    fake, base_url = start_fake(args.rpm, args.tpm, args.latency)
    env = {
        **base_env,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "bench",
        "GROUNDWIRE_OPENAI_DIMENSIONS": "64",
        **run_queues(),
    }
    for name in ("GROUNDWIRE_OPENAI_REQUESTS_PER_MINUTE", "GROUNDWIRE_OPENAI_TOKENS_PER_MINUTE"):
        os.environ.pop(name, None)
    if not args.no_budget:
        env["GROUNDWIRE_OPENAI_REQUESTS_PER_MINUTE"] = str(args.rpm)
        env["GROUNDWIRE_OPENAI_TOKENS_PER_MINUTE"] = str(args.tpm)
    settings = settings_for(env)

    pool = start_workers(workers, env)
    try:
        with admin_client(settings) as api:
            name = f"rate-{workers}-{uuid.uuid4().hex[:4]}"
            # A model of its own per run, so the embedding cache never answers for the provider.
            spec = {"name": name, "embedder": f"openai:bench-{name}"}
            created = api.post("/v1/collections", json=spec)
            assert created.status_code == 201, created.text
            started = time.perf_counter()
            batches = []
            for start in range(0, len(docs), 500):
                body = {"documents": docs[start : start + 500]}
                batches.append(
                    api.post(f"/v1/collections/{name}/documents", json=body).json()["batch_id"]
                )
            while not all(api.get(f"/v1/batches/{b}").json()["finished"] for b in batches):
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            failed = sum(api.get(f"/v1/batches/{b}").json()["failed"] for b in batches)
        stats = httpx.get(base_url.removesuffix("/v1") + "/stats").json()
    finally:
        stop_workers(pool)
        fake.terminate()
    allowed = args.tpm + args.tpm * elapsed / 60
    return (
        f"{workers:>7} {elapsed:>8.1f} {stats['tokens'] / elapsed * 60:>12,.0f} "
        f"{stats['tokens'] / allowed:>14.1%} {stats['ok']:>8} {stats['rate_limited']:>5} "
        f"{stats['rejected']:>5} {failed:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1500)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--tpm", type=int, default=300_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--no-budget", action="store_true", help="workers without the shared budget, to compare"
    )
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()[: args.documents]]
    docs = [{"id": str(r["id"]), "text": f"{r['title']}\n\n{r['text']}"} for r in rows]
    from groundwire.embedded import start_redis

    lines = []
    with database() as url:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
            redis_server = start_redis(Path(tmp), persistent=False)
            try:
                base_env = {"DATABASE_URL": url, "REDIS_URL": redis_server.url}
                for workers in (int(w) for w in args.workers.split(",")):
                    lines.append(run(workers, docs, base_env, args))
                    print(lines[-1], file=sys.stderr, flush=True)
            finally:
                redis_server.stop()
    print(
        f"limit {args.rpm} RPM / {args.tpm:,} TPM, {args.latency * 1000:.0f} ms latency,"
        f" {len(docs)} documents"
    )
    print(
        f"{'workers':>7} {'seconds':>8} {'tokens/min':>12} {'share of limit':>14}"
        f" {'requests':>8} {'429s':>5} {'400s':>5} {'failed':>6}"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
