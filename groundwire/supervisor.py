"""`groundwire up`: starts the whole service as child processes and stops it cleanly."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from groundwire import migrate
from groundwire.client import ADMIN_KEY_FILE, API_URL_FILE
from groundwire.embedded import (
    DATABASE,
    private_directory,
    shared_buffers_mb,
    start_postgres,
    start_redis,
)
from services.access.secrets import new_secret
from services.broker import Broker
from services.config import Settings

log = logging.getLogger("groundwire.up")
LOCK_FILE = "up.lock"


def worker_command(concurrency: int, queues: str) -> list[str]:
    """Returns the command line of a Celery worker (`up` runs the sweeper's beat on its own)."""
    return [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-Q", queues, "-c", str(concurrency), "--loglevel", "INFO", "-n", "groundwire@%h",
    ]  # fmt: skip


def beat_command(schedule: Path) -> list[str]:
    """Returns the command line of Celery beat, which schedules the sweeper."""
    return [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat",
        "--schedule", str(schedule), "--loglevel", "INFO",
    ]  # fmt: skip


def api_command(host: str, port: int) -> list[str]:
    """Returns the command line of the API server."""
    return [sys.executable, "-m", "services.serve", "--host", host, "--port", str(port)]


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


@dataclass
class Child:
    """A supervised process: how to start it, and its recent exits."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    before_restart: Callable[[], None] | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    exits: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


class Supervisor:
    """Owns the child processes and the embedded servers; restarts a child that dies, with
    backoff, and stops everything in reverse order.

    A child that exits `CRASH_LOOP_EXITS` times within `CRASH_LOOP_WINDOW_S` is in a crash
    loop (say its port is taken): then everything stops, with the exit status 1.
    """

    CRASH_LOOP_EXITS = 5
    CRASH_LOOP_WINDOW_S = 60.0
    FIRST_BACKOFF_S = 0.5
    MAX_BACKOFF_S = 5.0

    def __init__(self) -> None:
        self.children: list[Child] = []
        self.cleanups: list[Callable[[], None]] = []
        self.stopping = False

    def spawn(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        before_restart: Callable[[], None] | None = None,
    ) -> None:
        """Starts a child; `before_restart` runs each time before it is started again."""
        child = Child(name, cmd, env, before_restart)
        self.children.append(child)
        self._start(child)

    def _start(self, child: Child) -> None:
        log.info("starting %s", child.name)
        # In its own session, so a terminal's Ctrl-C reaches only us, and what it leaves
        # behind when it dies (a worker's pool processes) can be stopped with it.
        child.process = subprocess.Popen(child.cmd, env=child.env, start_new_session=True)
        child.started_at = time.monotonic()
        child.restart_at = None

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: asks the main loop to stop."""
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stopping = True

    def watch(self, ready: Callable[[], bool] | None = None, announce: str = "") -> int:
        """Restarts children that exit until a stop is requested or one crash-loops; logs
        `announce` once `ready()` first holds. Returns the exit status."""
        announced = ready is None
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is None and child.process and child.process.poll() is not None:
                    if not self._schedule_restart(child, now):
                        return 1
                elif child.restart_at is not None and now >= child.restart_at:
                    if child.before_restart is not None:
                        try:
                            child.before_restart()
                        except Exception:
                            log.exception("preparing to restart %s failed", child.name)
                    self._start(child)
            if not announced and ready is not None and ready():
                log.info("%s", announce)
                announced = True
            time.sleep(0.2)
        return 0

    def _schedule_restart(self, child: Child, now: float) -> bool:
        """Plans a restart after backoff; False when the child is in a crash loop."""
        assert child.process is not None
        code = child.process.returncode
        _kill_group(child.process.pid)  # whatever it left running
        while child.exits and now - child.exits[0] > self.CRASH_LOOP_WINDOW_S:
            child.exits.popleft()
        child.exits.append(now)
        if len(child.exits) >= self.CRASH_LOOP_EXITS:
            log.error(
                "%s exited %d times in %.0f s (last with %s): stopping everything",
                child.name, len(child.exits), self.CRASH_LOOP_WINDOW_S, code,
            )  # fmt: skip
            return False
        delay = min(self.MAX_BACKOFF_S, self.FIRST_BACKOFF_S * 2 ** (len(child.exits) - 1))
        log.warning("%s exited with %s; restarting it in %.1f s", child.name, code, delay)
        child.restart_at = now + delay
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Sends SIGTERM to every child, waits, kills stragglers, then runs the cleanups."""
        running = [(c.name, c.process) for c in reversed(self.children) if c.process is not None]
        for _, process in running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for name, process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                process.kill()
                process.wait()
            _kill_group(process.pid)
        for cleanup in reversed(self.cleanups):
            cleanup()


def _kill_group(pgid: int) -> None:
    """Kills what is left of a child's session (its leader has exited)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class DataDirBusy(Exception):
    """Another `groundwire up` holds the data directory."""


def lock_data_dir(data_dir: Path) -> TextIO:
    """Takes the data directory's lock for this process's lifetime; returns the open lock file.

    A second `groundwire up` on the same directory would start a second Redis on the same
    socket path (taking the running one's socket away) and a second PostgreSQL on its files.
    """
    private_directory(data_dir)
    handle = (data_dir / LOCK_FILE).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirBusy(
            f"another groundwire up (pid {holder}) is running on {data_dir}: stop it first,"
            " or give this one another --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches the API at, when it listens on `host`."""
    near = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    return f"http://{f'[{near}]' if ':' in near else near}:{port}"


def api_answers(host: str, port: int) -> Callable[[], bool]:
    """Returns a check that the API on `host:port` answers its readiness probe."""
    url = f"{client_url(host, port)}/readyz"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, ValueError):
            return False

    return answers


def up(host: str, port: int, data_dir: Path, concurrency: int) -> int:
    """Starts databases (embedded unless URLs are set), migrations, a worker, the sweeper's
    beat and the API, and keeps them running."""
    settings = Settings()
    try:
        lock = lock_data_dir(data_dir)
    except DataDirBusy as busy:
        log.error("%s", busy)
        return 1
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    env = dict(os.environ)
    try:
        database_url = settings.database_url
        if not database_url:
            postgres = start_postgres(
                data_dir, shared_buffers=shared_buffers_mb(), analyst_port=settings.analytics_port
            )
            supervisor.cleanups.append(postgres.stop)
            database_url = postgres.url
            log.info("embedded PostgreSQL ready (data in %s)", data_dir / "postgres")
            if settings.analytics_port is not None:
                log.info(
                    "analysts connect to postgresql://ROLE@127.0.0.1:%d/%s with their password",
                    settings.analytics_port,
                    DATABASE,
                )
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
        queues = f"{settings.ingest_queue},{settings.embed_queue},{settings.webhook_queue}"
        supervisor.spawn(
            "worker",
            worker_command(concurrency, queues),
            worker_env,
            before_restart=_redeliver(worker_env) if not settings.redis_url else None,
        )
        supervisor.spawn("beat", beat_command(data_dir / "celerybeat-schedule"), worker_env)
        supervisor.spawn("api", api_command(host, port), env)
        url_file = data_dir / API_URL_FILE  # where the CLI finds this instance
        supervisor.cleanups.insert(0, lambda: url_file.unlink(missing_ok=True))
        answers = api_answers(host, port)

        def ready() -> bool:
            if not answers():
                return False
            url_file.write_text(client_url(host, port) + "\n", encoding="utf-8")
            return True

        return supervisor.watch(
            ready, f"Groundwire is up at http://{host}:{port} (Ctrl-C stops it)"
        )
    finally:
        supervisor.stop()
        lock.close()
        log.info("stopped")


def _redeliver(worker_env: dict[str, str]) -> Callable[[], None]:
    """Before the worker starts again on our own Redis, whose only consumer it was, puts the
    messages its dead processes held back on their queues (else they wait out the broker's
    visibility timeout)."""

    def redeliver() -> None:
        restored = Broker(Settings.from_env(worker_env)).restore_unacknowledged()
        if restored:
            log.info("redelivering %d task(s) the worker held when it died", restored)

    return redeliver
