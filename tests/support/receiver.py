"""A webhook receiver over real HTTP: records every request it gets, can answer with an
error a number of times, and asks a callback (the test's check that the event's change is
committed) before it answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request: its headers (lower-cased names), body, when, and what the check said."""

    headers: dict[str, str]
    body: bytes
    at: float
    status: int
    checked: Any

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """Listens on 127.0.0.1:`port` (0: any free port) once started."""

    def __init__(self, port: int = 0, check: Callable[[dict[str, Any]], Any] | None = None):
        self.port = port
        self.check = check
        self.received: list[Received] = []
        self.failures_left = 0  # answer this many requests with `failure_status`
        self.failure_status = 503
        self.trickle = False  # answer a byte every 0.2 s, never finishing (up to 60 s)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if receiver.trickle:
                    with receiver._lock:
                        receiver.received.append(Received({}, body, time.time(), 0, None))
                    try:
                        for byte in b"HTTP/1.1 200 OK\r\n" * 200:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        pass  # the sender gave up on us, as it should
                    self.close_connection = True
                    return
                with receiver._lock:
                    failing = receiver.failures_left > 0
                    receiver.failures_left -= int(failing)
                checked = None
                if receiver.check is not None and not failing:
                    checked = receiver.check(json.loads(body))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    status = receiver.failure_status if failing else 204
                    receiver.received.append(Received(headers, body, time.time(), status, checked))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, event_type: str | None = None, answered: int | None = 204) -> list[Received]:
        """The requests of `event_type` (None: any) answered with `answered` (None: any)."""
        with self._lock:
            got = list(self.received)
        return [
            r
            for r in got
            if (event_type is None or r.event["type"] == event_type)
            and (answered is None or r.status == answered)
        ]
