"""Request bodies: a size limit per request, a budget per process, and one buffer each.

The body is read whole before the application runs, into one buffer handed over as a single
message (Starlette keeps that one object as the request's body instead of joining a list of
chunks into a second copy). Bodies over SMALL_BODY take their declared length from a budget
of bytes held at once by the process: eight 60 MiB ingests at once once took an API process
from 647 MB to 2.4 GB, parsing adding copies of each body; now those past the budget get 503
before they are sent.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response
from services.api.overload import overloaded

# Bodies up to this size (every query, most ingests) are read without taking from the budget:
# what they hold is bounded by the connection limit, and refusing them would shed queries
# because of a few large uploads.
SMALL_BODY = 1024 * 1024


class BodyBudget:
    """Bytes of large bodies held at once; one body is always let in, whatever its size."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held and self.held + size > self.total:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


def _declared(scope: Scope) -> tuple[int | None, bool]:
    """The Content-Length (None when absent or unreadable) and whether a body is sent chunked."""
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


class BodySizeLimit:
    """Answers 413 for bodies over `limit` bytes: by Content-Length up front, else as soon as
    the streamed body passes it; with `budget`, 503 for a large body that would take the
    bytes held at once past it. Either answer closes the connection, the rest unread.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        budget: int | None = None,
        streamed: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.budget = BodyBudget(budget) if budget is not None else None
        self.streamed = streamed

    def _too_large(self) -> ASGIApp:
        return error_response(
            413,
            "payload_too_large",
            f"request body exceeds {self.limit} bytes",
            {"Connection": "close"},
        )

    def _over_budget(self) -> ASGIApp:
        return overloaded("request bodies in progress fill this server's budget; retry", True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.streamed is not None and self.streamed(scope)):
            await self.app(scope, receive, send)  # a route that reads its body as it streams
            return
        length, chunked = _declared(scope)
        if length is not None and length > self.limit:
            await self._too_large()(scope, receive, send)
            return
        if not length and not chunked:
            await self.app(scope, receive, send)  # no body
            return
        reserved = 0
        if self.budget is not None and length is not None and length > SMALL_BODY:
            if not self.budget.take(length):
                await self._over_budget()(scope, receive, send)
                return
            reserved = length
        try:
            first = b""
            buffer: io.BytesIO | None = None
            seen = 0
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client left: nobody to answer
                chunk = message.get("body", b"")
                more = bool(message.get("more_body", False))
                seen += len(chunk)
                if seen > self.limit:
                    await self._too_large()(scope, receive, send)
                    return
                if self.budget is not None and length is None and seen > SMALL_BODY:
                    if not self.budget.take(seen - reserved):
                        await self._over_budget()(scope, receive, send)
                        return
                    reserved = seen
                if buffer is None and not first:
                    first = chunk
                else:
                    if buffer is None:
                        buffer = io.BytesIO()
                        buffer.write(first)
                        first = b""
                    buffer.write(chunk)
            # BytesIO hands over its own bytes object: the body is in memory once.
            body = buffer.getvalue() if buffer is not None else first
            del buffer, first
            delivered = False

            async def replay() -> Message:
                nonlocal body, delivered
                if delivered:
                    return await receive()  # waits for the client to disconnect
                delivered = True
                message = {"type": "http.request", "body": body, "more_body": False}
                body = b""  # the application holds it now
                return message

            await self.app(scope, replay, send)
        finally:
            if reserved and self.budget is not None:
                self.budget.give(reserved)
