"""Other clients' wait while thousands of connections stall, and a thousand queries at once,
against the API as its own process over real sockets.

    .venv/bin/python -m bench.slow_clients [--server serve|uvicorn] [--half-open 5000]
        [--slow-bodies 200] [--server-files N] [--concurrent 1000] [--set VARIABLE=value]

Starts the API on throwaway services (see bench/api_process.py), its open-file limit set to
`--server-files` when given (a host whose limit is below the attack), and a `hash`
collection. Then:

1. `--half-open` connections each send part of a request head and stall, `--slow-bodies`
   send a query's head and then its body a byte a second; meanwhile ten /healthz and ten
   queries of another client are timed (5 s timeout each);
2. after the header and body deadlines (`--hold` seconds), how many of the stalled
   connections the server has closed, its open files and the size of its log (info level);
3. the attack gone, `--concurrent` queries sent at once: their wait and how they were
   answered (200, or 503 with Retry-After past GROUNDWIRE_MAX_INFLIGHT_REQUESTS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import statistics
import threading
import time
from collections import Counter

import httpx
import psutil

from bench.api_process import HEADERS, RunningApi, make_collection, running_api, services


def _open(port: int, data: bytes, count: int) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(data)
        except OSError:
            continue  # not accepted in time: the attacker moves on
        sock.setblocking(False)
        opened.append(sock)
    return opened


def _timings(api: RunningApi, name: str) -> str:
    results: dict[str, list[float]] = {"healthz": [], "query": []}
    failures: Counter[str] = Counter()
    with httpx.Client(
        base_url=api.url,
        headers=HEADERS,
        timeout=5,
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as client:
        for i in range(10):
            for kind in results:
                started = time.perf_counter()
                try:
                    if kind == "healthz":
                        status = client.get("/healthz").status_code
                    else:
                        query = {"query": f"tide {i}"}
                        status = client.post(
                            f"/v1/collections/{name}/query", json=query
                        ).status_code
                except httpx.HTTPError as error:
                    failures[f"{kind} {type(error).__name__}"] += 1
                    continue
                if status != 200:
                    failures[f"{kind} {status}"] += 1
                results[kind].append(time.perf_counter() - started)
    shown = []
    for kind, times in results.items():
        if times:
            shown.append(
                f"{kind} p50 {statistics.median(times) * 1000:.0f} ms "
                f"max {max(times) * 1000:.0f} ms ({len(times)} answered)"
            )
    return "; ".join(shown) + (f"; failed: {dict(failures)}" if failures else "")


def _closed(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


async def _burst(api: RunningApi, name: str, count: int) -> str:
    """`count` queries at once, each on its own connection, written and read by hand (an
    HTTP client library spends more CPU a request than the server does: it would measure
    itself)."""
    opened = asyncio.Event()
    ready = 0

    async def one(i: int) -> tuple[float, str]:
        nonlocal ready
        body = json.dumps({"query": f"tide {i}"}).encode()
        request = (
            f"POST /v1/collections/{name}/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {HEADERS['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
        ready += 1
        if ready == count:
            opened.set()
        await opened.wait()
        started = time.perf_counter()
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            elapsed = time.perf_counter() - started
            status = head.split(b" ", 2)[1].decode()
            retry = [
                line.split(b":", 1)[1].strip().decode()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"retry-after:")
            ]
            return elapsed, status + (f" (Retry-After {retry[0]})" if retry else "")
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            return time.perf_counter() - started, type(error).__name__
        finally:
            writer.close()

    answers = await asyncio.gather(*(one(i) for i in range(count)))
    by_status = Counter(status for _, status in answers)
    waits = sorted(elapsed for elapsed, _ in answers)
    text = (
        f"{count} queries at once: wait p50 {statistics.median(waits):.2f} s, "
        f"max {waits[-1]:.2f} s; {dict(by_status)}"
    )
    for label, match in (("served", "200"), ("shed", "503")):
        times = sorted(elapsed for elapsed, status in answers if status.startswith(match))
        if times:
            text += f"; {label} p50 {statistics.median(times):.2f} s max {times[-1]:.2f} s"
    return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["serve", "uvicorn"], action="append")
    parser.add_argument("--half-open", type=int, default=5000)
    parser.add_argument("--slow-bodies", type=int, default=200)
    parser.add_argument("--server-files", type=int, default=None)
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument("--set", action="append", default=[], help="VARIABLE=value for the API")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with services() as (env, logs):
        env.update(item.split("=", 1) for item in args.set)
        for kind in args.server or ["serve"]:
            with running_api(kind, env, logs, files=args.server_files, level="info") as api:
                run(kind, api, args)


def run(kind: str, api: RunningApi, args: argparse.Namespace) -> None:
    name = make_collection(api)
    server = psutil.Process(api.process.pid)
    _timings(api, name)  # the embedder loaded before anything is timed
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stalled: "
    body_head = (
        f"POST /v1/collections/{name}/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {HEADERS['Authorization']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 2000\r\n\r\n{{"
    ).encode()
    started = time.monotonic()
    stalled = _open(api.port, head, args.half_open)
    slow = _open(api.port, body_head, args.slow_bodies)
    opened_s = time.monotonic() - started
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(1.0):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b" ")

    threading.Thread(target=drip, daemon=True).start()
    try:
        print(
            f"{kind}: {len(stalled)} half-open + {len(slow)} slow-body connections held "
            f"({opened_s:.1f} s to open); server open files {server.num_fds()}"
        )
        print(f"{kind}: under them: {_timings(api, name)}")
        time.sleep(max(0.0, args.hold - (time.monotonic() - started)))
        attackers = stalled + slow
        closed = sum(_closed(sock) for sock in attackers)
        print(
            f"{kind}: {args.hold:.0f} s after the attack began the server had closed {closed} "
            f"of {len(attackers)}; its open files {server.num_fds()}, log "
            f"{api.log.stat().st_size} bytes"
        )
    finally:
        stop.set()
        for sock in stalled + slow:
            sock.close()
    time.sleep(1)
    cpu = sum(server.cpu_times()[:2])
    burst = asyncio.run(_burst(api, name, args.concurrent))
    print(f"{kind}: {burst}; server CPU {sum(server.cpu_times()[:2]) - cpu:.1f} s")


if __name__ == "__main__":
    main()
