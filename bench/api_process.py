"""The API as its own process for benchmarks over real sockets, on throwaway services.

`services()` yields the environment of a migrated database (embedded unless DATABASE_URL is
set) and a Redis (REDIS_URL, else a local redis-server); `running_api()` starts the API on it:
`python -m services.serve` (what `groundwire api` runs) or, with kind `uvicorn`, plain `python
-m uvicorn services.app:create_app --factory` (the server without its hardening).
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench.common import ADMIN_KEY, database, run_queues
from groundwire.embedded import start_redis

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class RunningApi:
    process: subprocess.Popen[bytes]
    port: int
    url: str
    log: Path


@contextmanager
def services() -> Iterator[tuple[dict[str, str], Path]]:
    """The API's environment on fresh services, and a folder for logs."""
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp, database() as url:
        redis_url = os.environ.get("REDIS_URL")
        redis = None
        if not redis_url:
            redis = start_redis(Path(tmp), persistent=False)
            redis_url = redis.url
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "GROUNDWIRE_ADMIN_KEY": ADMIN_KEY,
            "GROUNDWIRE_LOCAL_THREADS": "1",
            **run_queues(),
        }
        try:
            yield env, Path(tmp)
        finally:
            if redis is not None:
                redis.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command(kind: str, port: int, level: str = "warning") -> list[str]:
    if kind == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "services.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", level,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "services.serve",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", level,
    ]  # fmt: skip


def _file_limit(files: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    return limit


@contextmanager
def running_api(
    kind: str, env: dict[str, str], logs: Path, files: int | None = None, level: str = "warning"
) -> Iterator[RunningApi]:
    """Starts the API (its open-file limit set to `files` when given) and waits for it."""
    port = free_port()
    log = logs / f"api-{kind}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(kind, port, level),
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_file_limit(files) if files else None,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(log.read_text())
            time.sleep(0.2)
        yield RunningApi(process, port, url, log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_collection(api: RunningApi, embedder: str = "hash") -> str:
    """Creates a collection; returns its name."""
    name = f"bench-{os.urandom(4).hex()}"
    made = httpx.post(
        f"{api.url}/v1/collections",
        json={"name": name, "embedder": embedder},
        headers=HEADERS,
        timeout=30,
    )
    made.raise_for_status()
    return name


class PeakRss:
    """Samples a process's resident memory in a thread while the block runs: `before` (after
    `settle_s` of rest), `peak` during it, and `after` (after `settle_s` more), in bytes."""

    def __init__(self, pid: int, interval_s: float = 0.01, settle_s: float = 0.5) -> None:
        self.process = psutil.Process(pid)
        self.interval_s, self.settle_s = interval_s, settle_s
        self.before = self.peak = self.after = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRss:
        time.sleep(self.settle_s)
        self.before = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(self.settle_s)
        self._done.set()
        self._thread.join()
        self.after = self.process.memory_info().rss
