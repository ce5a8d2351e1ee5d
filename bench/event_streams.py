"""What event streams cost: the latency from a committed status change to its event at each
of 100 open streams, and the API process's CPU and memory with 1,000 idle streams open.

    .venv/bin/python -m bench.event_streams [--streams 100] [--changes 200] [--idle 1000]

One API process (uvicorn, as served) on an embedded PostgreSQL; documents are accepted
(no worker runs), then their status is changed straight in the database, one committed
transaction at a time, as a worker would; every stream of the collection must receive each
change. Latency is commit returned → event parsed by the client (clients and server share
this machine's 2 cores, so it includes the clients' own time). The idle figure is the API's
CPU time over 30 s with `--idle` streams open and nothing changing (heartbeats every 15 s),
beside its CPU with none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import psycopg

from bench.common import ADMIN_KEY, database
from services.db import libpq_url
from tests.support.processes import free_port


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "services.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        api = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return api, url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(log.read_text())


async def listen(
    client: httpx.AsyncClient,
    url: str,
    seen: dict[tuple[str, str], list[float]],
    opened: asyncio.Event,
) -> None:
    """Reads a stream; records when each (document, status) event arrived. A 503 (the API
    sheds requests past its limit in progress while many streams open at once) is retried
    after its Retry-After, as EventSource does."""
    while True:
        async with client.stream("GET", url) as response:
            if response.status_code == 503:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            assert response.status_code == 200, response.status_code
            opened.set()
            data = None
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    seen.setdefault((data["id"], data["status"]), []).append(time.perf_counter())
                    data = None
            return


async def latency(url: str, headers: dict[str, str], name: str, dsn: str, streams: int,
                  changes: int) -> list[float]:  # fmt: skip
    seen: dict[tuple[str, str], list[float]] = {}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=streams + 10)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=httpx.Timeout(30, read=None), limits=limits
    ) as client:
        opened = [asyncio.Event() for _ in range(streams)]
        tasks = [
            asyncio.create_task(listen(client, f"/v1/collections/{name}/events", seen, o))
            for o in opened
        ]
        await asyncio.gather(*(o.wait() for o in opened))
        await asyncio.sleep(1)
        committed: dict[tuple[str, str], float] = {}
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(changes):
                doc, status = f"doc{i % 50}", ("processing" if (i // 50) % 2 == 0 else "queued")
                conn.execute(
                    "UPDATE documents SET status = %s WHERE external_id = %s"
                    " AND collection_id = (SELECT id FROM collections WHERE name = %s)",
                    [status, doc, name],
                )
                committed[(doc, status)] = time.perf_counter()
                await asyncio.sleep(0.02)
                # the next change of this document waits until every stream has this one
                deadline = time.perf_counter() + 10
                while len(seen.get((doc, status), [])) < streams and time.perf_counter() < deadline:
                    await asyncio.sleep(0.005)
                arrivals = seen.pop((doc, status), [])
                if len(arrivals) < streams:
                    raise SystemExit(f"{streams - len(arrivals)} streams missed {doc} {status}")
                latencies.extend(t - committed[(doc, status)] for t in arrivals)
        for task in tasks:
            task.cancel()
    return latencies


async def hold_idle(url: str, headers: dict[str, str], name: str, count: int,
                    api: psutil.Process, seconds: float) -> dict[str, float]:  # fmt: skip
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=httpx.Timeout(60, read=None), limits=limits
    ) as client:
        seen: dict[tuple[str, str], list[float]] = {}
        opened = [asyncio.Event() for _ in range(count)]
        tasks = []
        for o in opened:
            tasks.append(
                asyncio.create_task(listen(client, f"/v1/collections/{name}/events", seen, o))
            )
            await asyncio.sleep(0.002)
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 120)
        await asyncio.sleep(2)
        before, started = api.cpu_times(), time.perf_counter()
        await asyncio.sleep(seconds)
        after, took = api.cpu_times(), time.perf_counter() - started
        rss = api.memory_info().rss / 2**20
        for task in tasks:
            task.cancel()
    spent = (after.user + after.system) - (before.user + before.system)
    return {"cpu_percent": 100 * spent / took, "rss_mib": rss}


def idle_cpu(api: psutil.Process, seconds: float) -> float:
    before, started = api.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    after = api.cpu_times()
    return (
        100
        * ((after.user + after.system) - (before.user + before.system))
        / (time.perf_counter() - started)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with database() as db_url:
        tag = uuid.uuid4().hex[:6]
        env = {
            "DATABASE_URL": db_url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "GROUNDWIRE_ADMIN_KEY": ADMIN_KEY,
            "GROUNDWIRE_INGEST_QUEUE": f"b-ingest-{tag}",
            "GROUNDWIRE_EMBED_QUEUE": f"b-embed-{tag}",
        }
        log = Path(tempfile.gettempdir()) / f"bench-events-{tag}.log"
        api, url = start_api(env, log)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        try:
            name = "events-bench"
            httpx.post(f"{url}/v1/collections", json={"name": name, "embedder": "hash"},
                       headers=headers).raise_for_status()  # fmt: skip
            docs = [{"id": f"doc{i}", "text": f"Document {i}."} for i in range(50)]
            httpx.post(f"{url}/v1/collections/{name}/documents", json={"documents": docs},
                       headers=headers).raise_for_status()  # fmt: skip
            process = psutil.Process(api.pid)
            quiet = idle_cpu(process, 10)
            lat = asyncio.run(
                latency(url, headers, name, libpq_url(db_url), args.streams, args.changes)
            )
            lat.sort()
            print(f"{args.streams} streams, {args.changes} committed changes each seen by all:")
            print(f"  event latency p50 {statistics.median(lat) * 1000:.1f} ms,"
                  f" p95 {lat[int(0.95 * len(lat))] * 1000:.1f} ms,"
                  f" max {lat[-1] * 1000:.1f} ms ({len(lat)} events)")  # fmt: skip
            held = asyncio.run(hold_idle(url, headers, name, args.idle, process, args.seconds))
            print(f"{args.idle} idle streams: API CPU {held['cpu_percent']:.2f}% of a core"
                  f" (none open: {quiet:.2f}%), RSS {held['rss_mib']:.0f} MiB")  # fmt: skip
        finally:
            api.terminate()
            api.wait(30)


if __name__ == "__main__":
    main()
