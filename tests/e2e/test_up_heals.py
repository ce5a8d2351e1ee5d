"""`groundwire up` on the embedded default keeps itself running: a child that dies comes back,
work it held is delivered again, a second `up` on the same data directory is refused, and
"is up" is said only once the API answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from tests.support.processes import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

# Plain text of about a megabyte: most of a second of chunking each, so an ingest is still
# running when its worker is killed.
TEXT = " ".join(f"word{i} harbour lamp tide" for i in range(32_000))


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    url: str
    data: Path
    log: Path
    analytics_port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def child(self, role: str) -> psutil.Process | None:
        """The running child of `up` whose command line names `role`."""
        for child in psutil.Process(self.process.pid).children():
            try:
                if role in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def post_one(self, client: httpx.Client, collection: str, doc_id: str, text: str) -> None:
        """Creates a hash collection and posts one document to it."""
        made = client.post("/v1/collections", json={"name": collection, "embedder": "hash"})
        assert made.is_success, made.text
        posted = client.post(f"/v1/collections/{collection}/documents", json={"documents": [
            {"id": doc_id, "text": text}
        ]})  # fmt: skip
        assert posted.status_code == 202, posted.text

    def client(self) -> httpx.Client:
        key = (self.data / "admin-key").read_text().strip()
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


def start_up(
    data: Path, port: int, log: Path, analytics_port: int | None = None
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "groundwire.cli", "up",
        "--port", str(port), "--data-dir", str(data), "--concurrency", "1",
    ]  # fmt: skip
    env = dict(os.environ)
    if analytics_port is not None:
        env["GROUNDWIRE_ANALYTICS_PORT"] = str(analytics_port)
    with log.open("ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "up.log"
    analytics_port = free_port()
    process = start_up(data, port, log, analytics_port)
    handle = Up(process, f"http://127.0.0.1:{port}", data, log, analytics_port)
    try:
        wait_for(lambda: "Groundwire is up" in handle.output(), timeout=120, interval=0.05)
        yield handle
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_is_up_is_said_when_the_api_answers(up: Up) -> None:
    assert httpx.get(f"{up.url}/readyz", timeout=5).status_code == 200
    lines = up.output().splitlines()
    said = next(i for i, line in enumerate(lines) if "Groundwire is up" in line)
    started = [i for i, line in enumerate(lines) if "Application startup complete" in line]
    assert started and started[0] < said, "announced before the API had started"


def test_a_second_up_on_the_same_data_dir_is_refused(up: Up, tmp_path: Path) -> None:
    socket = up.data / "redis" / "redis.sock"
    assert socket.exists()
    second_log = tmp_path / "second.log"
    second = start_up(up.data, free_port(), second_log)
    assert second.wait(60) == 1
    said = second_log.read_text()
    assert f"pid {up.process.pid}" in said and "another groundwire up" in said, said
    assert socket.exists(), "the running instance's Redis socket was removed"
    with up.client() as client:
        up.post_one(client, "c", "after", "still flowing after the refused second start")
        wait_for(
            lambda: client.get("/v1/collections/c/documents/after").json()["status"] == "done",
            timeout=30,
        )


def test_killing_any_child_during_an_ingest_heals(up: Up) -> None:
    with up.client() as client:
        assert client.post("/v1/collections", json={"name": "k", "embedder": "hash"}).is_success
        docs = [{"id": f"d{i}", "text": f"document {i} " + TEXT} for i in range(10)]
        posted = client.post("/v1/collections/k/documents", json={"documents": docs})
        assert posted.status_code == 202, posted.text
        batch = posted.json()["batch_id"]

        def progress() -> dict[str, int]:
            return dict(client.get(f"/v1/batches/{batch}").json())

        wait_for(lambda: progress()["done"] >= 1, timeout=60, interval=0.1)
        for role in ("worker", "beat", "--host"):
            victim = up.child(role)
            assert victim is not None, f"no {role} child: {up.output()[-2000:]}"
            victim.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()

            def replaced(role: str = role, old: int = victim.pid) -> bool:
                again = up.child(role)
                return again is not None and again.pid != old

            wait_for(replaced, timeout=10, interval=0.1)
            if role == "--host":
                wait_for(up.answers, timeout=10 - (time.monotonic() - killed_at))
            assert up.process.poll() is None
        finished = wait_for(lambda: (p := progress())["finished"] and p, timeout=120)
        assert finished["done"] == len(docs) and finished["failed"] == 0, finished
    output = up.output()
    assert "worker exited with -9; restarting it" in output
    assert "beat exited with -9; restarting it" in output
    assert "api exited with -9; restarting it" in output


def test_analysts_reach_the_embedded_database(up: Up) -> None:
    env = {**os.environ, "GROUNDWIRE_DATA_DIR": str(up.data)}
    with up.client() as client:
        up.post_one(client, "sql", "counted", "one document for the analysts to count")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "groundwire.cli", "analytics", *args],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    granted = cli("grant", "analyst", "--create")  # no DATABASE_URL: the embedded one
    assert granted.returncode == 0, granted.stderr
    counted = cli("psql", "analyst", "-At", "-c", "SELECT count(*) FROM documents")
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.strip() == "1"  # the analytics schema is its search path
    refused = cli("psql", "analyst", "-At", "-c", "SELECT count(*) FROM public.api_keys")
    assert refused.returncode != 0 and "permission denied" in refused.stderr

    # Over loopback TCP (GROUNDWIRE_ANALYTICS_PORT), with the password the grant set.
    env["ANALYST_PASSWORD"] = "a long analyst password"
    reset = cli("grant", "analyst", "--password-env", "ANALYST_PASSWORD")
    assert reset.returncode == 0, reset.stderr
    assert "a long analyst password" not in reset.stdout + reset.stderr
    assert f"127.0.0.1:{up.analytics_port}/groundwire" in up.output()
    where = f"host=127.0.0.1 port={up.analytics_port} dbname=groundwire connect_timeout=5"
    with psycopg.connect(where, user="analyst", password=env["ANALYST_PASSWORD"]) as conn:
        row = conn.execute("SELECT count(*) FROM analytics.documents").fetchone()
        assert row == (1,)
    for user in ("postgres", "groundwire"):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(where, user=user, password="").close()
    unset = cli("grant", "analyst", "--password-env", "NO_SUCH_VARIABLE")
    assert unset.returncode != 0 and "NO_SUCH_VARIABLE is not set" in unset.stderr
