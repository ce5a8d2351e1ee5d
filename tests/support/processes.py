"""Real processes for tests: Celery workers, and helpers to start and stop any child."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support.waiting import wait_for

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    """Returns a TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Starts `cmd` in the repository with `env` over this process's (isolated) environment."""
    handle = log.open("wb")
    return subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Asks a child to stop, and kills it if it does not within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Worker:
    """A real Celery worker process and its log."""

    process: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None = None

    def pool_children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(
    env: dict[str, str], log: Path, concurrency: int = 2, queues: str | None = None
) -> Worker:
    """Starts a worker on `queues` (default: the ingest, embed and webhook queues of `env`)."""
    stages = ("INGEST", "EMBED", "WEBHOOK")
    queues = queues or ",".join(
        env[f"GROUNDWIRE_{s}_QUEUE"] for s in stages if f"GROUNDWIRE_{s}_QUEUE" in env
    )
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO",
        "-n", f"test-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    process = spawn(cmd, env, log)
    worker = Worker(process, log)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"worker exited early:\n{worker.output()[-3000:]}")
        return " ready." in worker.output()

    wait_for(ready, timeout=90)
    return worker


def stop_worker(worker: Worker) -> None:
    """Stops a worker (warm shutdown, then kill)."""
    stop(worker.process)
