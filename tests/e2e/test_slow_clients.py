"""Slow and many clients against the API server as production starts it (`python -m
services.serve`), over real sockets.

The server runs with the default connection cap (4,096) and header and body deadlines of 8 s.
Five thousand connections send part of a request head and stall, two hundred send a head and
then their body a byte at a time: health checks and queries of other clients still answer
within a second, the server closes every stalled connection within its deadlines (the oldest
displaced sooner by newer ones past the cap), and requests past the in-flight limit get 503
with Retry-After at once. A 413 ends its connection; a Host the server does not answer to
gets 421.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.openai_server import FakeOpenAI
from tests.support.processes import ROOT, free_port, stop
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow  # an API process, and thousands of connections

HALF_OPEN = 5000
SLOW_BODIES = 200
DEADLINE_S = 8  # GROUNDWIRE_HEADER_TIMEOUT_S and GROUNDWIRE_BODY_TIMEOUT_S
IN_FLIGHT = 4  # GROUNDWIRE_MAX_INFLIGHT_REQUESTS
PROVIDER_LATENCY_S = 1.5  # what a slot-holding query waits for the provider


@dataclass
class Api:
    process: subprocess.Popen[bytes]
    port: int
    url: str
    headers: dict[str, str]
    queried: str  # a hash collection
    slow: str  # an openai collection, its provider as slow as the test makes it
    provider: FakeOpenAI
    log: Path


@pytest.fixture(scope="module")
def api(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    provider = FakeOpenAI().start()
    port = free_port()
    env = {
        **service_env,
        "OPENAI_BASE_URL": provider.base_url,
        "GROUNDWIRE_OPENAI_MAX_RETRIES": "0",
        "GROUNDWIRE_HEADER_TIMEOUT_S": str(DEADLINE_S),
        "GROUNDWIRE_BODY_TIMEOUT_S": str(DEADLINE_S),
        "GROUNDWIRE_MAX_INFLIGHT_REQUESTS": str(IN_FLIGHT),
    }
    log = tmp_path_factory.mktemp("slow-clients") / "api.log"
    cmd = [sys.executable, "-m", "services.serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cmd, "--log-level", "info"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(log.read_text())
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=60)
        headers = {"Authorization": f"Bearer {env['GROUNDWIRE_ADMIN_KEY']}"}
        names = []
        for embedder in ("hash", "openai:slow-model"):
            name = f"slow-{uuid.uuid4().hex[:8]}"
            made = httpx.post(
                f"{url}/v1/collections",
                json={"name": name, "embedder": embedder},
                headers=headers,
                timeout=30,
            )
            assert made.status_code == 201, made.text
            # The first query of an embedder loads it (a tokenizer, a client): not measured.
            warm = httpx.post(
                f"{url}/v1/collections/{name}/query",
                json={"query": "warm up"},
                headers=headers,
                timeout=30,
            )
            assert warm.status_code == 200, warm.text
            names.append(name)
        yield Api(process, port, url, headers, names[0], names[1], provider, log)
    finally:
        stop(process)
        provider.stop()


def _timed(call: httpx.Client, method: str, path: str, **kwargs: object) -> tuple[float, int]:
    started = time.perf_counter()
    response = call.request(method, path, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - started, response.status_code


def _fresh(api: Api) -> httpx.Client:
    """A client on connections of its own, none kept alive (each request connects anew)."""
    return httpx.Client(
        base_url=api.url,
        headers=api.headers,
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _closed(sock: socket.socket, received: dict[socket.socket, bytes]) -> bool:
    """Reads what the server sent (kept in `received` for the sockets there); True once it
    has closed the connection."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
            if sock in received:
                received[sock] += data
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def _open_attack(port: int, head: bytes, count: int, body: bytes = b"") -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(head + body)
        sock.setblocking(False)
        opened.append(sock)
    return opened


def test_slow_clients_leave_others_answered_and_overload_gets_503(api: Api) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = HALF_OPEN + SLOW_BODIES + 512
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    server = psutil.Process(api.process.pid)
    files_before = server.num_fds()
    auth = api.headers["Authorization"]
    partial = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stalled: "
    body_head = (
        f"POST /v1/collections/{api.queried}/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 2000\r\n\r\n"
    ).encode()
    stop_dripping = threading.Event()
    attackers: list[socket.socket] = []
    try:
        started = time.monotonic()
        attackers += _open_attack(api.port, partial, HALF_OPEN)
        slow = _open_attack(api.port, body_head, SLOW_BODIES, b'{"query": ')
        attackers += slow
        opened_s = time.monotonic() - started

        def drip() -> None:  # a byte per body every half second
            while not stop_dripping.wait(0.5):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        # Measured once the server has taken in the burst (nothing waits in its accept queue):
        # the property is other clients' wait under connections held, not under a flood of
        # new ones.
        wait_for(lambda: _accept_queue(api.port) == 0, timeout=DEADLINE_S, interval=0.05)
        settled_s = time.monotonic() - started - opened_s

        # Other clients, while every stalled connection is still within its deadline.
        health: list[float] = []
        queries: list[float] = []
        with _fresh(api) as client:
            for i in range(10):
                elapsed, status = _timed(client, "GET", "/healthz")
                assert status == 200
                health.append(elapsed)
                elapsed, status = _timed(
                    client,
                    "POST",
                    f"/v1/collections/{api.queried}/query",
                    json={"query": f"tide {i}"},
                )
                assert status == 200
                queries.append(elapsed)
        measured_s = time.monotonic() - started
        assert measured_s < DEADLINE_S, "measured after the deadlines: rerun on a quieter machine"
        print(
            f"\n{HALF_OPEN} half-open + {SLOW_BODIES} slow-body connections opened in "
            f"{opened_s:.1f} s, taken in {settled_s:.1f} s later ({server.num_fds()} open files);"
            f" under them /healthz p50 {statistics.median(health) * 1000:.0f} ms"
            f" max {max(health) * 1000:.0f} ms, queries p50 "
            f"{statistics.median(queries) * 1000:.0f} ms max {max(queries) * 1000:.0f} ms"
        )
        assert max(health) < 1.0 and max(queries) < 1.0, (health, queries)

        # Past the in-flight limit: 503 with Retry-After at once, and health still answers.
        api.provider.reset(latency_s=PROVIDER_LATENCY_S)
        try:
            with ThreadPoolExecutor(max_workers=3 * IN_FLIGHT) as pool, _fresh(api) as client:
                burst = [
                    pool.submit(
                        _answer,
                        client,
                        f"/v1/collections/{api.slow}/query",
                        {"query": f"question {uuid.uuid4().hex}"},
                    )
                    for _ in range(3 * IN_FLIGHT)
                ]
                time.sleep(0.3)
                probe_s, probe = _timed(client, "GET", "/healthz")
                answers = [future.result(timeout=30) for future in burst]
        finally:
            api.provider.reset()
        shed = [a for a in answers if a[1] == 503]
        served = [a for a in answers if a[1] == 200]
        print(
            f"{len(answers)} slow queries at once, limit {IN_FLIGHT}: {len(served)} served in "
            f"{max((a[0] for a in served), default=0):.1f} s, {len(shed)} answered 503 within "
            f"{max((a[0] for a in shed), default=0) * 1000:.0f} ms; /healthz meanwhile "
            f"{probe_s * 1000:.0f} ms"
        )
        assert len(served) + len(shed) == len(answers), answers
        assert 1 <= len(served) <= IN_FLIGHT and shed, answers
        assert all(a[0] < 1.0 and a[2] >= 1 and a[3] == "overloaded" for a in shed), shed
        assert probe == 200 and probe_s < 1.0

        # Every stalled connection is closed by the server within its deadline.
        received = {sock: b"" for sock in slow}

        def all_closed() -> bool:
            return all([_closed(sock, received) for sock in attackers])

        wait_for(all_closed, timeout=DEADLINE_S * 2 + 5, interval=0.5)
        closed_s = time.monotonic() - started
        timed_out = sum(data.startswith(b"HTTP/1.1 408") for data in received.values())
        assert timed_out == SLOW_BODIES, f"{timed_out} of {SLOW_BODIES} slow bodies got a 408"
        wait_for(lambda: server.num_fds() < files_before + 50, timeout=10)
        logged = api.log.stat().st_size
        print(
            f"all {len(attackers)} stalled connections closed by the server {closed_s:.1f} s "
            f"after the attack began ({timed_out} slow bodies answered 408); its open files "
            f"{server.num_fds()} (before {files_before}); its log {logged} bytes"
        )
        assert logged < 256 * 1024, "the log is not rate-limited"
    finally:
        stop_dripping.set()
        for sock in attackers:
            sock.close()
    assert api.process.poll() is None, api.log.read_text()[-3000:]


def _accept_queue(port: int) -> int:
    """Connections waiting in the kernel for the server listening on `port` to accept them."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # 127.0.0.1, LISTEN
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def _answer(client: httpx.Client, path: str, body: dict[str, str]) -> tuple[float, int, int, str]:
    """(seconds, status, Retry-After or 0, error code or '') of one request."""
    started = time.perf_counter()
    response = client.post(path, json=body)
    elapsed = time.perf_counter() - started
    retry = int(response.headers.get("retry-after", "0"))
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return elapsed, response.status_code, retry, code


def _read_response(sock: socket.socket, timeout: float = 5) -> tuple[bytes, bytes]:
    """Reads one response (head, body) sent with Content-Length."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head, body


def test_413_closes_the_connection(api: Api) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
        sock.sendall(
            (
                f"POST /v1/collections HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: {api.headers['Authorization']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n"
            ).encode()
            + b"x" * 65536
        )
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"connection: close" in head.lower(), head
        assert json.loads(body)["error"]["code"] == "payload_too_large"
        started = time.monotonic()
        sock.settimeout(3)
        assert sock.recv(1) == b"", "the server keeps the connection open after its 413"
        # The server stops reading too: the rest of the body is refused within seconds.
        chunk = b"x" * 1024 * 1024
        with pytest.raises(OSError):
            while time.monotonic() - started < 10:
                sock.sendall(chunk)
        print(f"\n413: closed for writing at once, for reading {time.monotonic() - started:.1f} s")


def test_host_header_is_checked(api: Api) -> None:
    def get(host: str) -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            return _read_response(sock)

    for host in ("127.0.0.1", f"127.0.0.1:{api.port}", f"localhost:{api.port}", "[::1]:8000"):
        head, _ = get(host)
        assert head.startswith(b"HTTP/1.1 200"), (host, head)
    for host in ("attacker.example", f"attacker.example:{api.port}", "127.0.0.1.nip.io"):
        head, body = get(host)
        assert head.startswith(b"HTTP/1.1 421"), (host, head)
        assert json.loads(body)["error"]["code"] == "host_not_allowed"
