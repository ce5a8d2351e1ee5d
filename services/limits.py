"""Request body size limit, enforced before the body is read whole."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import ApiError, error_response


class BodyTooLarge(ApiError):
    """The request body exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body exceeds {limit} bytes")


class BodySizeLimit:
    """Rejects bodies over `limit` bytes: by Content-Length up front, else while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    exc = BodyTooLarge(self.limit)
                    await error_response(exc.status, exc.code, exc.message)(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited_receive, send)
