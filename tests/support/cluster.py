"""A cluster of real processes for fault scenarios: the API (uvicorn), two Celery workers and a
beat running the sweeper, on the test session's PostgreSQL and Redis, with short leases and
timeouts so recovery happens within seconds. Scenarios kill, restart and overload its parts."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from tests.support.environment import harness
from tests.support.invariants import settled
from tests.support.processes import Worker, free_port, spawn, start_worker, stop, stop_worker
from tests.support.waiting import wait_for


@dataclass
class Cluster:
    """The processes of one Groundwire deployment, and ways to hurt them."""

    env: dict[str, str]
    logs: Path
    api_url: str
    api: subprocess.Popen[bytes]
    beat: subprocess.Popen[bytes]
    workers: list[Worker] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=60, headers=admin_headers(self.env))

    def collection(self, embedder: str, **settings: Any) -> tuple[str, int]:
        name = f"fault-{uuid.uuid4().hex[:8]}"
        with self.client() as client:
            created = client.post(
                "/v1/collections", json={"name": name, "embedder": embedder, **settings}
            )
        assert created.status_code == 201, created.text
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            row = conn.execute("SELECT id FROM collections WHERE name = %s", [name]).fetchone()
        assert row is not None
        return name, int(row[0])

    def add_worker(self) -> Worker:
        log = self.logs / f"worker-{uuid.uuid4().hex[:6]}.log"
        worker = start_worker(self.env, log, concurrency=2)
        self.workers.append(worker)
        return worker

    def kill_worker(self, index: int = 0) -> None:
        """SIGKILLs a whole worker: its main process and its pool, mid-task."""
        worker = self.workers.pop(index)
        parent = psutil.Process(worker.process.pid)
        for process in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        worker.process.wait()


def report(row: dict[str, Any]) -> None:
    """Prints a scenario's figures and appends them to $GROUNDWIRE_FAULTS_REPORT when set."""
    print(json.dumps(row))
    path = harness().faults_report
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


def admin_headers(env: dict[str, str]) -> dict[str, str]:
    """The server admin key of a cluster's environment, as a request carries it."""
    return {"Authorization": f"Bearer {env['GROUNDWIRE_ADMIN_KEY']}"}


def fault_env(service_env: dict[str, str], **overrides: str) -> dict[str, str]:
    """The cluster's settings: the test services, own queues, leases and timeouts of seconds."""
    tag = uuid.uuid4().hex[:6]
    return {
        **service_env,
        "GROUNDWIRE_INGEST_QUEUE": f"fault-ingest-{tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"fault-embed-{tag}",
        "GROUNDWIRE_INGEST_BATCH_DOCUMENTS": "4",
        "GROUNDWIRE_OPENAI_INGEST_BATCH_DOCUMENTS": "4",
        "GROUNDWIRE_HASH_BATCH_INPUTS": "32",
        "GROUNDWIRE_OPENAI_BATCH_INPUTS": "8",
        "GROUNDWIRE_PROCESSING_LEASE_S": "6",
        "GROUNDWIRE_QUEUED_GRACE_S": "4",
        "GROUNDWIRE_SWEEP_INTERVAL_S": "1",
        "GROUNDWIRE_VISIBILITY_TIMEOUT_S": "10",
        "GROUNDWIRE_TASK_RETRY_BACKOFF_MAX_S": "2",
        **overrides,
    }


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Starts the API under uvicorn; returns the process and its URL once it answers."""
    port = free_port()
    api = spawn(
        [sys.executable, "-m", "uvicorn", "services.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env, log,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if api.poll() is not None:
            pytest.fail(log.read_text())
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, timeout=60)
    return api, url


@contextlib.contextmanager
def running_cluster(env: dict[str, str], logs: Path) -> Iterator[Cluster]:
    """Starts the API, a beat (the sweeper) and two workers; stops them all at the end."""
    beat = spawn(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat",
         "--schedule", str(logs / "beat-schedule"), "--loglevel", "WARNING"],
        env, logs / "beat.log",
    )  # fmt: skip
    api: subprocess.Popen[bytes] | None = None
    cluster: Cluster | None = None
    try:
        api, url = start_api(env, logs / "api.log")
        cluster = Cluster(env, logs, url, api, beat)
        for _ in range(2):
            cluster.add_worker()
        yield cluster
    finally:
        for worker in cluster.workers if cluster else []:
            stop_worker(worker)
        stop(beat)
        if api is not None:
            stop(api)


def wait_settled(database_url: str, collection_id: int, timeout: float = 120) -> float:
    """Waits until nothing of the collection is queued or processing; returns the seconds."""
    started = time.monotonic()
    wait_for(lambda: settled(database_url, collection_id), timeout=timeout, interval=0.25)
    return time.monotonic() - started
