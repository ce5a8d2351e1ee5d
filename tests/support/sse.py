"""A server-sent events client for tests: reads a stream on a thread, parses its events, and
lets a test wait for the ones it expects."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    """One server-sent event (a comment line is `comment` with its text)."""

    event: str
    data: Any
    id: str | None = None


class EventReader:
    """Reads `url` as an event stream until closed or the server ends it."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.status: int | None = None
        self.ended = threading.Event()
        self._started = threading.Event()
        self._response: httpx.Response | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as response:
                self._response, self.status = response, response.status_code
                self._started.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.events.put(Event("comment", line[1:].strip()))
                    elif line == "":
                        if "event" in fields or "data" in fields:
                            data = fields.get("data", "")
                            with contextlib.suppress(ValueError):
                                data = json.loads(data)
                            self.events.put(Event(fields.get("event", "message"), data,
                                                  fields.get("id")))  # fmt: skip
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self._started.set()
            self.ended.set()
            self.events.put(None)

    def until(self, done: Callable[[list[Event]], bool], timeout: float = 60.0) -> list[Event]:
        """The events (comments left out) read until `done(events)` holds; fails on timeout
        or when the stream ends first."""
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while not done(seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; events so far: {seen}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                if done(seen):
                    break
                raise AssertionError(f"the stream ended; events so far: {seen}")
            if event.event != "comment":
                seen.append(event)
        return seen

    def comments(self, timeout: float) -> list[str]:
        """The comment lines read within `timeout` seconds."""
        found, deadline = [], time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event is not None and event.event == "comment":
                found.append(str(event.data))
        return found

    def close(self) -> None:
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        self._client.close()
        self._thread.join(5)
