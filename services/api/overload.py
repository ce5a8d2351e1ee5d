"""Load shedding: past its limit of requests in progress, the process answers 503 at once.

Requests waiting for a database connection or a thread only grow the wait of every other one
(a thousand concurrent queries once waited 30 s at the median, none refused); a prompt 503
with Retry-After lets clients back off and keeps the wait of those let in short.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response

RETRY_AFTER_S = 1
# Liveness and readiness probes: counted apart, against a reserve of their own, so that a
# process at its limit still tells its supervisor it is alive.
PROBES = frozenset({"/healthz", "/readyz"})
PROBE_RESERVE = 8


def overloaded(message: str, close: bool = False) -> JSONResponse:
    """A 503 with Retry-After and the error JSON; `close` when the body was left unread."""
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if close:
        headers["Connection"] = "close"
    return error_response(503, "overloaded", message, headers)


class InFlightLimit:
    """ASGI middleware admitting at most `limit` requests at once in this process.

    It sits inside the body reader (services/api/limits.py), so a request counts once its
    body has arrived: a client sending its body slowly holds a connection, not a slot.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        probe_reserve: int = PROBE_RESERVE,
        long_lived: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        self.limit = max(1, limit)
        # Paths of long-lived streams (event feeds): they hold a slot until their response
        # begins, then wait on events, not on a thread or a database connection.
        self.long_lived = long_lived
        self.probe_reserve = probe_reserve
        self.requests = 0
        self.probes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One event loop runs every request: no other request runs between test and count.
        if scope.get("path") in PROBES:
            if self.probes >= self.probe_reserve:
                await overloaded("too many health probes in progress; retry")(scope, receive, send)
                return
            self.probes += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.probes -= 1
            return
        if self.requests >= self.limit:
            message = f"the server is at its limit of {self.limit} requests in progress; retry"
            await overloaded(message)(scope, receive, send)
            return
        self.requests += 1
        held = True
        if self.long_lived is not None and self.long_lived(scope.get("path", "")):
            original = send

            async def send(message: Message) -> None:
                nonlocal held
                if message["type"] == "http.response.start" and held:
                    held = False
                    self.requests -= 1
                await original(message)

        try:
            await self.app(scope, receive, send)
        finally:
            if held:
                self.requests -= 1
