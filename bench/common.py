"""Shared set-up for benchmarks: a migrated database (embedded unless DATABASE_URL is set)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from groundwire import migrate
from groundwire.embedded import start_postgres
from services.app import create_app
from services.config import Settings


@contextmanager
def database() -> Iterator[str]:
    """Yields the URL of a migrated database: DATABASE_URL, else a throwaway embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        migrate.upgrade(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        server = start_postgres(Path(tmp), database="bench")
        try:
            migrate.upgrade(server.url)
            yield server.url
        finally:
            server.stop()


def median_of(repeats: int, run: Callable[[], float]) -> float:
    """Runs `run` `repeats` times and returns the median of what it returns."""
    return statistics.median(run() for _ in range(repeats))


def start_workers(
    count: int, env: dict[str, str], concurrency: int = 1
) -> list[subprocess.Popen[bytes]]:
    """Starts `count` Celery worker processes on the env's queues; waits for them to connect."""
    queues = f"{env['GROUNDWIRE_INGEST_QUEUE']},{env['GROUNDWIRE_EMBED_QUEUE']}"
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-Q", queues, "-c", str(concurrency), "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    workers = [
        subprocess.Popen(
            [*cmd, "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"], env={**os.environ, **env}, **quiet
        )
        for _ in range(count)
    ]
    time.sleep(6)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """Stops worker processes and waits for them."""
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)


def run_queues() -> dict[str, str]:
    """Fresh ingest and embed queue names, so runs never share leftover messages."""
    tag = uuid.uuid4().hex[:6]
    return {
        "GROUNDWIRE_INGEST_QUEUE": f"b-ingest-{tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"b-embed-{tag}",
    }


# The server admin key of a benchmark's in-process API (it never leaves the process).
ADMIN_KEY = f"gw_bench-{uuid.uuid4().hex}"


def settings_for(env: dict[str, str]) -> Settings:
    """The settings a process started with this environment plus `env` reads: what the
    in-process API of a benchmark uses, the same as its worker processes get."""
    return Settings.from_env({"GROUNDWIRE_ADMIN_KEY": ADMIN_KEY, **os.environ, **env})


def admin_client(settings: Settings) -> TestClient:
    """The in-process API for `settings`, called with its server admin key."""
    assert settings.admin_key is not None
    headers = {"Authorization": f"Bearer {settings.admin_key.get_secret_value()}"}
    return TestClient(create_app(settings), headers=headers)
