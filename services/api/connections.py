"""HTTP connections under deadlines and a cap: uvicorn's h11 protocol, hardened.

uvicorn times out only an idle kept-alive connection: one that sends part of a request head,
or a body a byte at a time, or never reads its response, holds a file descriptor for good
(20,000 such connections once left an API unable to accept its health checks). Here:

- a request's line and headers must arrive within `header_timeout_s` of its first byte (of
  the connection being opened, for the first request), else the connection closes (408 when
  part of a head came);
- a body must arrive at `body_min_rate` bytes a second over every `body_timeout_s`, else
  408 and close; a response must drain to its reader within `body_timeout_s` of stalling;
- past `max_connections` open connections, a new one displaces the one that has waited
  longest for a request head (idle or stalled), else it is answered 503 and closed;
- closing while the client is still sending a body (after a 413, a 503, a 408) sends the
  answer, stops writing and reads what comes for at most LINGER_S seconds and LINGER_BYTES
  before closing: the client sees the answer rather than a reset, and the body is not read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

LINGER_S = 2.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ConnectionLimits:
    """The deadlines and the cap a server's connections live under."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    body_min_rate: int = 64 * 1024
    max_connections: int = 4096


class LimitedConfig(Config):
    """uvicorn's configuration plus the connection limits (pickled to worker processes)."""

    def __init__(self, *args: Any, connection_limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_limits = connection_limits


def _canned(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    """A whole response, for answers given outside a request cycle."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


HEAD_TIMEOUT = _canned(408, "Request Timeout", "timeout", "the request head took too long")
BODY_TIMEOUT_BODY = json.dumps(
    {"error": {"code": "timeout", "message": "the request body arrived too slowly"}}
).encode()
REFUSED = _canned(
    503,
    "Service Unavailable",
    "overloaded",
    "the server has too many connections open; retry",
    "retry-after: 1\r\n",
)


class Phase(Enum):
    HEAD = "head"  # waiting for (part of) a request head, or idle between requests
    BODY = "body"  # the request's body is arriving
    APP = "app"  # the body is in; the application is answering
    CLOSING = "closing"


# Per server: connections waiting for a request head, the longest waiting first.
_waiting: weakref.WeakKeyDictionary[ServerState, OrderedDict[LimitedH11Protocol, None]] = (
    weakref.WeakKeyDictionary()
)


class _Transport(asyncio.Transport):
    """The socket's transport, except that closing goes through the protocol's close."""

    def __init__(self, inner: asyncio.Transport, protocol: LimitedH11Protocol) -> None:
        super().__init__()
        self.inner = inner
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.inner.is_closing() or self.protocol.phase is Phase.CLOSING

    def close(self) -> None:
        self.protocol.close()

    def abort(self) -> None:
        self.inner.abort()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.inner.writelines(list_of_data)

    def write_eof(self) -> None:
        self.inner.write_eof()

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and the cap of `config.connection_limits`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits = getattr(config, "connection_limits", ConnectionLimits())
        self.waiting = _waiting.setdefault(server_state, OrderedDict())
        self.socket: asyncio.Transport | None = None
        self.phase = Phase.HEAD
        self.deadline: asyncio.TimerHandle | None = None  # of the head, the body or a linger
        self.write_deadline: asyncio.TimerHandle | None = None
        self.head_bytes = 0
        self.window_bytes = 0
        self.lingered = 0

    # The connection's life.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.socket = transport
        super().connection_made(_Transport(transport, self))
        if len(self.connections) > self.limits.max_connections and not self._displace():
            log.warning("connection limit of %d reached: refused", self.limits.max_connections)
            transport.write(REFUSED)
            self._shut()
            return
        self._enter(Phase.HEAD)
        self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.write_deadline is not None:
            self.write_deadline.cancel()
        self.waiting.pop(self, None)
        self.phase = Phase.CLOSING
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.CLOSING:
            self.lingered += len(data)  # read only to be thrown away
            if self.lingered > LINGER_BYTES:
                self._shut()
            return
        if self.phase is Phase.HEAD:
            self.head_bytes += len(data)
            if self.deadline is None:  # the first byte of a request after a kept-alive one
                self._arm(self.limits.header_timeout_s, self._head_timed_out)
        elif self.phase is Phase.BODY:
            self.window_bytes += len(data)
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def shutdown(self) -> None:
        if self.phase is Phase.CLOSING:
            self._shut()
            return
        try:
            super().shutdown()
        except h11.LocalProtocolError:
            self._shut()

    def close(self) -> None:
        """Closes, lingering when the client is still sending a body (see the module)."""
        socket = self.socket
        if socket is None or socket.is_closing() or self.phase is Phase.CLOSING:
            return
        if self.conn.their_state is h11.SEND_BODY and socket.can_write_eof():
            self._enter(Phase.CLOSING)
            self._disarm()
            socket.write_eof()
            socket.resume_reading()  # to see the client's end, or to throw its bytes away
            self._arm(LINGER_S, self._shut)
            return
        self._shut()

    # Flow control: a reader that stops reading has body_timeout_s to start again.

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.write_deadline is None:
            self.write_deadline = self.loop.call_later(
                self.limits.body_timeout_s, self._write_timed_out
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.write_deadline is not None:
            self.write_deadline.cancel()
            self.write_deadline = None

    # Where the connection is, and its deadline there.

    def _follow(self) -> None:
        """Moves to the phase the request cycle and h11 are in now."""
        if self.phase is Phase.CLOSING or self.transport.is_closing():
            return
        cycle = self.cycle
        reading_body = self.conn.their_state is h11.SEND_BODY
        if cycle is None or cycle.response_complete:
            phase = Phase.BODY if reading_body else Phase.HEAD
        else:
            phase = Phase.BODY if reading_body else Phase.APP
        if phase is self.phase:
            return
        self._disarm()
        self._enter(phase)
        if phase is Phase.HEAD:
            self.head_bytes = 0  # armed at the next request's first byte
        elif phase is Phase.BODY:
            self.window_bytes = 0
            self._arm(self.limits.body_timeout_s, self._body_window)

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        if phase is Phase.HEAD:
            self.waiting[self] = None
        else:
            self.waiting.pop(self, None)

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _displace(self) -> bool:
        """Closes the connection waiting longest for a request head; False when none is."""
        for victim in self.waiting:
            if victim is not self:
                log.info(
                    "connection limit of %d reached: closed the connection waiting longest",
                    self.limits.max_connections,
                )
                victim._shut()
                return True
        return False

    def _shut(self) -> None:
        """Closes now: the write buffer gets LINGER_S to drain, then the socket is dropped."""
        self._disarm()
        self.waiting.pop(self, None)
        self.phase = Phase.CLOSING
        socket = self.socket
        if socket is None:
            return
        if not socket.is_closing():
            socket.close()
        if socket.get_write_buffer_size():
            self.loop.call_later(LINGER_S, socket.abort)

    def _head_timed_out(self) -> None:
        self.deadline = None
        if self.phase is not Phase.HEAD or self.socket is None:
            return
        if self.head_bytes:
            self.socket.write(HEAD_TIMEOUT)
        log.info("request head not in after %.0f s: closed", self.limits.header_timeout_s)
        self._shut()

    def _body_window(self) -> None:
        self.deadline = None
        if self.phase is not Phase.BODY:
            return
        needed = self.limits.body_min_rate * self.limits.body_timeout_s
        # Reading paused: the application has not taken what came, the client is not slow.
        if self.window_bytes >= needed or self.flow.read_paused:
            self.window_bytes = 0
            self._arm(self.limits.body_timeout_s, self._body_window)
            return
        log.info("request body slower than %d bytes/s: answered 408", self.limits.body_min_rate)
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and self.socket is not None:
            try:
                for event in (
                    h11.Response(
                        status_code=408,
                        reason=b"Request Timeout",
                        headers=[
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY_TIMEOUT_BODY)).encode()),
                            (b"connection", b"close"),
                        ],
                    ),
                    h11.Data(data=BODY_TIMEOUT_BODY),
                    h11.EndOfMessage(),
                ):
                    self.socket.write(self.conn.send(event) or b"")
            except h11.LocalProtocolError:
                pass
        if cycle is not None:  # the application sees the client gone; its answer is dropped
            cycle.disconnected = True
            cycle.message_event.set()
        self.close()

    def _write_timed_out(self) -> None:
        self.write_deadline = None
        log.info("response not read for %.0f s: connection dropped", self.limits.body_timeout_s)
        if self.socket is not None:
            self.socket.abort()
