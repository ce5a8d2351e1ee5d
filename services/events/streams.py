"""The event streams, as server-sent events: a collection's `document` events until the
client leaves, and a batch's `progress` until `finished`.

Each event carries an `id:`; a client that reconnects with it as Last-Event-ID gets what it
missed (a collection's events are replayed from the table; a batch's progress is a count,
so it gets the current one). A comment line every `heartbeat_s` keeps proxies from closing
an idle stream. A stream whose client reads too slowly to keep up ends; the client's
reconnect with Last-Event-ID picks up from where it was.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
from sqlalchemy import select, text

from services.db import Database
from services.events.hub import COLUMNS, DocumentEvent, EventHub, Subscription
from services.models import BatchItem

REPLAY_PAGE = 1000
DEBOUNCE_S = 0.1  # a batch's progress is counted at most this often
RETRY_MS = 2000


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


HEARTBEAT = b": heartbeat\n\n"


def replay(
    database: Database, collection_id: int, after: int, limit: int = REPLAY_PAGE
) -> list[DocumentEvent]:
    """A collection's events past `after`, in order."""
    with database.scope() as session:
        rows = session.execute(
            text(
                f"SELECT {COLUMNS} FROM document_events"
                " WHERE collection_id = :collection AND id > :after ORDER BY id LIMIT :limit"
            ),
            {"collection": collection_id, "after": after, "limit": limit},
        ).all()
    return [DocumentEvent(*row) for row in rows]


async def collection_events(
    hub: EventHub,
    database: Database,
    collection_id: int,
    principals: tuple[str, ...] | None,
    last_event_id: int | None,
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    """`document` events of the collection (those `principals` may read; None: all)."""
    subscription = hub.subscribe(collection_id)  # before the replay: nothing falls between
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        sent: set[int] = set()
        newest = last_event_id if last_event_id is not None else hub.horizon
        if last_event_id is not None:
            after = last_event_id
            while True:
                page = await anyio.to_thread.run_sync(replay, database, collection_id, after)
                for event in page:
                    sent.add(event.id)
                    newest = max(newest, event.id)
                    if event.readable_by(principals):
                        yield sse("document", event.data(), min(newest, hub.horizon))
                if len(page) < REPLAY_PAGE:
                    break
                after = page[-1].id
        async for live in _live(subscription, heartbeat_s):
            if live is None:
                yield HEARTBEAT
                continue
            if live.id in sent:
                continue
            newest = max(newest, live.id)
            if live.readable_by(principals):
                yield sse("document", live.data(), min(newest, hub.horizon))
    finally:
        hub.unsubscribe(subscription)


async def _live(
    subscription: Subscription, heartbeat_s: float
) -> AsyncIterator[DocumentEvent | None]:
    """The subscription's events, None for each `heartbeat_s` without one; ends when the
    stream fell too far behind (the client reconnects and replays)."""
    while not subscription.overflowed:
        yield await subscription.next(heartbeat_s)


def batch_members(database: Database, batch_id: uuid.UUID) -> set[int]:
    """The documents of a batch."""
    with database.scope() as session:
        return set(
            session.scalars(select(BatchItem.document_id).where(BatchItem.batch_id == batch_id))
        )


async def batch_events(
    hub: EventHub,
    database: Database,
    collection_id: int,
    batch_id: uuid.UUID,
    progress: Callable[[], dict[str, Any]],
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    """`progress` events of the batch as its documents change, then `finished`."""
    subscription = hub.subscribe(collection_id)  # before the first count
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        members = await anyio.to_thread.run_sync(batch_members, database, batch_id)
        while True:
            counts = await anyio.to_thread.run_sync(progress)
            finished = counts.pop("finished")
            yield sse("progress", counts, hub.horizon)
            if finished:
                yield sse("finished", counts, hub.horizon)
                return
            async for event in _live(subscription, heartbeat_s):
                if event is None:
                    yield HEARTBEAT
                elif event.document_id in members:
                    await asyncio.sleep(DEBOUNCE_S)  # let a burst settle into one count
                    while not subscription.queue.empty():
                        subscription.queue.get_nowait()
                    break
            else:
                return  # fell behind: the client reconnects and gets the count
    finally:
        hub.unsubscribe(subscription)
