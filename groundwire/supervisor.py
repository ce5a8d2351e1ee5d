"""`groundwire up`: starts the whole service as child processes and stops it cleanly."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from groundwire import migrate
from groundwire.client import ADMIN_KEY_FILE
from groundwire.embedded import shared_buffers_mb, start_postgres, start_redis
from services.access.secrets import new_secret
from services.config import Settings

log = logging.getLogger("groundwire.up")


def worker_command(concurrency: int, queues: str, beat_schedule: Path | None) -> list[str]:
    """Returns the command line of a Celery worker (with the sweeper's beat when given)."""
    cmd = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO", "-n", "groundwire@%h",
    ]  # fmt: skip
    if beat_schedule is not None:
        cmd += ["-B", "--schedule", str(beat_schedule)]
    return cmd


def api_command(host: str, port: int) -> list[str]:
    """Returns the command line of the API server."""
    return [
        sys.executable, "-m", "uvicorn", "services.app:create_app", "--factory",
        "--host", host, "--port", str(port),
    ]  # fmt: skip


def admin_key(settings: Settings, data_dir: Path) -> str:
    """The server admin key: `GROUNDWIRE_ADMIN_KEY`, else the one kept in the data dir,
    created (mode 0600) and printed on first start."""
    if settings.admin_key is not None:
        return settings.admin_key.get_secret_value()
    path = data_dir / ADMIN_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    key = new_secret()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    print(f"Server admin key (shown once; kept in {path}, mode 0600):\n  {key}", flush=True)
    return key


class Supervisor:
    """Owns the child processes and the embedded servers, and stops them in reverse order."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cleanups: list[Callable[[], None]] = []
        self.stopping = False

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        """Starts a child in its own session, so a terminal's Ctrl-C reaches only us."""
        log.info("starting %s", name)
        self.children.append((name, subprocess.Popen(cmd, env=env, start_new_session=True)))

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: asks the main loop to stop."""
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stopping = True

    def watch(self) -> int:
        """Waits until a stop is requested or a child exits; returns the exit status."""
        while not self.stopping:
            for name, child in self.children:
                if child.poll() is not None:
                    log.error("%s exited with %s; stopping everything", name, child.returncode)
                    return 1
            time.sleep(0.3)
        return 0

    def stop(self, timeout: float = 30.0) -> None:
        """Sends SIGTERM to every child, waits, kills stragglers, then runs the cleanups."""
        for _, child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + timeout
        for name, child in reversed(self.children):
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for cleanup in reversed(self.cleanups):
            cleanup()


def up(host: str, port: int, data_dir: Path, concurrency: int) -> int:
    """Starts databases (embedded unless URLs are set), migrations, a worker and the API."""
    settings = Settings()
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    env = dict(os.environ)
    try:
        database_url = settings.database_url
        if not database_url:
            postgres = start_postgres(data_dir, shared_buffers=shared_buffers_mb())
            supervisor.cleanups.append(postgres.stop)
            database_url = postgres.url
            log.info("embedded PostgreSQL ready (data in %s)", data_dir / "postgres")
        redis_url = settings.redis_url
        if not redis_url:
            server = start_redis(data_dir)
            supervisor.cleanups.append(server.stop)
            redis_url = server.url
            log.info("embedded Redis ready on %s", server.socket)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            GROUNDWIRE_ADMIN_KEY=admin_key(settings, data_dir),
        )
        migrate.upgrade(database_url)
        log.info("database migrated")
        # Worker processes share the cores: one ONNX thread each unless told otherwise
        # (measured: 2 processes x 1 thread run 0.93x the raw model, 1 x 2 threads 0.76x).
        worker_env = {k: v for k, v in env.items() if k != "GROUNDWIRE_ADMIN_KEY"}
        worker_env.setdefault(
            "GROUNDWIRE_LOCAL_THREADS", str(max(1, (os.cpu_count() or 1) // concurrency))
        )
        # The worker's Prometheus endpoint, aggregated over its pool processes.
        metrics_dir = data_dir / "worker-metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        worker_env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        worker_env.setdefault("GROUNDWIRE_WORKER_METRICS_PORT", str(port + 1))
        supervisor.spawn(
            "worker",
            worker_command(
                concurrency,
                f"{settings.ingest_queue},{settings.embed_queue}",
                data_dir / "celerybeat-schedule",
            ),
            worker_env,
        )
        supervisor.spawn("api", api_command(host, port), env)
        log.info("Groundwire is up at http://%s:%s (Ctrl-C stops it)", host, port)
        return supervisor.watch()
    finally:
        supervisor.stop()
        log.info("stopped")
