"""Relaying a model's stream to a client that may leave: the model's (blocking) iterator is
read a piece at a time on a worker thread, the client's connection checked between pieces,
and the iterator closed (closing the model's own stream) as soon as the client is gone.
Servers do not tell a response that keeps writing to a closed connection, so without the
check the model would write on, paid for, to nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request

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
