"""Resident memory of one API process while several clients each send a large ingest body.

    .venv/bin/python -m bench.body_memory [--clients 8] [--mib 60] [--server serve|uvicorn]
        [--set GROUNDWIRE_MAX_INFLIGHT_BODY_BYTES=1073741824]

Starts the API as its own process on throwaway services (see bench/api_process.py), creates a
`hash` collection and sends `--clients` ingest requests at once, each a JSON body of about
`--mib` MiB (documents of 7.5 MiB, under the 8 MiB document limit), sampling the API
process's RSS every 20 ms; `--set` passes settings to the API. No worker runs: accepted
documents stay queued.

Prints the RSS before, the peak during the requests, and how they were answered: the
in-flight body budget (GROUNDWIRE_MAX_INFLIGHT_BODY_BYTES) answers those past it 503 with
Retry-After rather than holding every body and its parsed copies at once.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter

import httpx

from bench.api_process import (
    HEADERS,
    PeakRss,
    RunningApi,
    make_collection,
    running_api,
    services,
)

DOCUMENT_BYTES = 7 * 1024 * 1024 + 512 * 1024  # 7.5 MiB
WORDS = "harbour granite meadow copper violin lantern orchard "
MIB = 1024 * 1024


def body(client: int, mib: int) -> bytes:
    """An ingest request of about `mib` MiB: documents of DOCUMENT_BYTES of ASCII words."""
    count = max(1, mib * MIB // DOCUMENT_BYTES)
    text = (WORDS * (DOCUMENT_BYTES // len(WORDS) + 1))[:DOCUMENT_BYTES]
    documents = [{"id": f"c{client}-d{i}", "text": text} for i in range(count)]
    return json.dumps({"documents": documents}).encode()


def measure(api: RunningApi, bodies: list[bytes]) -> str:
    """Sends `bodies` at once; returns the RSS figures and the answers."""
    name = make_collection(api)
    statuses: Counter[str] = Counter()

    def send(content: bytes) -> None:
        try:
            answer = httpx.post(
                f"{api.url}/v1/collections/{name}/documents",
                content=content,
                headers={**HEADERS, "Content-Type": "application/json"},
                timeout=600,
            )
            retry = answer.headers.get("retry-after")
            statuses[f"{answer.status_code}" + (f" (Retry-After {retry})" if retry else "")] += 1
        except httpx.HTTPError as error:
            statuses[type(error).__name__] += 1

    with PeakRss(api.process.pid, interval_s=0.02, settle_s=1) as rss:
        started = time.perf_counter()
        threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    return (
        f"{len(bodies)} bodies of {len(bodies[0]) / MIB:.0f} MiB at once: RSS before "
        f"{rss.before / MIB:.0f} MiB, peak {rss.peak / MIB:.0f} MiB"
        f" (+{(rss.peak - rss.before) / MIB:.0f}), after {rss.after / MIB:.0f} MiB;"
        f" answers {dict(statuses)} in {elapsed:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--mib", type=int, default=60)
    parser.add_argument("--server", choices=["serve", "uvicorn"], action="append")
    parser.add_argument("--set", action="append", default=[], help="VARIABLE=value for the API")
    args = parser.parse_args()
    bodies = [body(i, args.mib) for i in range(args.clients)]
    with services() as (env, logs):
        env.update(item.split("=", 1) for item in args.set)
        for kind in args.server or ["serve"]:
            with running_api(kind, env, logs) as api:
                print(f"{kind}: {measure(api, bodies)}")


if __name__ == "__main__":
    main()
