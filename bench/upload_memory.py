"""Resident memory of one API process while a large file is uploaded, and what it took.

    .venv/bin/python -m bench.upload_memory [--mib 100] [--repeat 3]

Starts the API as its own process on throwaway services (see bench/api_process.py), creates a
`hash` collection and uploads a file of `--mib` MiB (random bytes behind a PDF signature:
incompressible, so PostgreSQL stores what was sent) to POST /v1/collections/{name}/files,
streamed by the client from disk, while sampling the API process's RSS every 10 ms. No worker
runs: the upload stays queued. Each run's file differs in a few bytes, so each is stored anew
(identical bytes would be found and not written again). Prints, per run, the RSS before, the
peak and its rise, the seconds the upload took and its rate, then the median rise; the goal
is a rise under 30 MiB
for a 100 MiB upload (the body goes to a temporary file, then to the database 1 MiB at a
time). The first run is a warm-up the median leaves out (imports, connection pools).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.api_process import HEADERS, PeakRss, make_collection, running_api, services

MIB = 1024 * 1024


def make_file(folder: Path, mib: int) -> Path:
    """A file of `mib` MiB: a PDF signature, then random bytes."""
    path = folder / "large.pdf"
    with path.open("wb") as out:
        out.write(b"%PDF-1.7\n")
        for _ in range(mib):
            out.write(os.urandom(MIB))
    return path


def upload(url: str, name: str, path: Path, run: int, pid: int) -> tuple[float, float, float]:
    """Uploads `path` once; returns (RSS before, peak RSS, seconds)."""
    with PeakRss(pid) as rss, path.open("rb") as handle:
        started = time.perf_counter()
        answer = httpx.post(
            f"{url}/v1/collections/{name}/files",
            files={"file": (f"large-{run}.pdf", handle)},
            headers=HEADERS,
            timeout=600,
        )
        elapsed = time.perf_counter() - started
    if answer.status_code != 202:
        raise SystemExit(f"upload answered {answer.status_code}: {answer.text[:300]}")
    return rss.before, rss.peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, services() as (env, logs):
        env["GROUNDWIRE_MAX_FILE_BYTES"] = str((args.mib + 1) * MIB)
        path = make_file(Path(tmp), args.mib)
        with running_api("serve", env, logs) as api:
            name = make_collection(api)
            rises = []
            for run in range(args.repeat + 1):
                with path.open("r+b") as handle:  # other bytes each run: stored anew, not found
                    handle.seek(9)
                    handle.write(os.urandom(16))
                before, peak, elapsed = upload(api.url, name, path, run, api.process.pid)
                rise = (peak - before) / MIB
                label = "warm-up" if run == 0 else f"run {run}"
                print(
                    f"{label}: {args.mib} MiB upload: RSS before {before / MIB:.0f} MiB,"
                    f" peak {peak / MIB:.0f} MiB (+{rise:.1f}) in {elapsed:.1f} s"
                    f" ({args.mib / elapsed:.0f} MiB/s)"
                )
                if run:
                    rises.append(rise)
            print(f"median rise over {args.repeat} runs: +{statistics.median(rises):.1f} MiB")


if __name__ == "__main__":
    main()
