"""Relaying a model's stream to a client that may leave: the model's (blocking) iterator is
read a piece at a time on a worker thread, the client's connection checked between pieces,
and the iterator closed (closing the model's own stream) as soon as the client is gone.
Servers do not tell a response that keeps writing to a closed connection, so without the
check the model would write on, paid for, to nobody."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request

from services.answers.chat import ContextTooLong
from services.api.errors import ApiError

log = logging.getLogger(__name__)

_END: Any = object()


async def relay(request: Request, pieces: Iterator[str]) -> AsyncIterator[str]:
    """The pieces as they come, until they end or the client leaves."""
    try:
        while not await request.is_disconnected():
            piece = await anyio.to_thread.run_sync(next, pieces, _END)
            if piece is _END:
                return
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:  # also when the server cancels the response on a disconnect
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)


def failure(error: Exception) -> dict[str, dict[str, str]]:
    """What a stream that has begun says when it fails: the error's code and message (an
    unexpected one logged, and said only as `internal`), never a cut connection."""
    if isinstance(error, ApiError):
        return {"error": {"code": error.code, "message": error.message}}
    if isinstance(error, ContextTooLong):
        message = "the prompt is over the model's context window: ask with max_context_tokens lower"
        return {"error": {"code": "context_overflow", "message": message}}
    log.error("a stream failed", exc_info=error)
    return {"error": {"code": "internal", "message": "internal error"}}
