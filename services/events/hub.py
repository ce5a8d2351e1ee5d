"""One listener per API process: it LISTENs on `groundwire_events` (sent on commit by the
triggers of migrations/versions/0016_document_events.py), reads the new events once, and hands
them to every stream open on their collection. A thousand open streams cost one connection and
one query per notification, never a query per stream.

Event ids are given out before their transactions commit, so an id can arrive after a higher
one; the `Horizon` (services/events/horizon.py) keeps the gaps and re-reads them until they
fill or expire. After a lost connection the listener reconnects and reads everything past
what it had seen, so no event is lost while it was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

from services.db import libpq_url
from services.events.horizon import Horizon

log = logging.getLogger(__name__)

CHANNEL = "groundwire_events"
PAGE = 5000  # events read at once
GAPS_READ = 50  # gap ranges re-read at once (the oldest)
RECHECK_S = 5.0  # without a notification, gaps are re-read this often
QUEUE = 10_000  # events a slow stream may have waiting before it is closed (it reconnects)
COLUMNS = "id, collection_id, document_id, external_id, version, status, error_class, access"


@dataclass(frozen=True)
class DocumentEvent:
    """A document's status or version changed."""

    id: int
    collection_id: int
    document_id: int
    external_id: str
    version: int
    status: str
    error_class: str | None
    access: list[str] | None = None

    def readable_by(self, principals: tuple[str, ...] | None) -> bool:
        """Whether a stream for these principals shows it (None: every document)."""
        return principals is None or self.access is None or bool(set(self.access) & set(principals))

    def data(self) -> dict[str, Any]:
        """What a `document` event says."""
        data: dict[str, Any] = {
            "id": self.external_id,
            "version": self.version,
            "status": self.status,
        }
        if self.error_class is not None:
            data["error_class"] = self.error_class
        return data


class Subscription:
    """The events of one collection, for one stream."""

    def __init__(self, collection_id: int) -> None:
        self.collection_id = collection_id
        self.queue: asyncio.Queue[DocumentEvent] = asyncio.Queue(maxsize=QUEUE)
        self.overflowed = False

    def offer(self, event: DocumentEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next(self, timeout: float) -> DocumentEvent | None:
        """The next event, or None after `timeout` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


class EventHub:
    """The process's listener and the streams subscribed to it."""

    def __init__(self, database_url: str, gap_ttl_s: float = 300.0) -> None:
        self.url = libpq_url(database_url)
        self.gap_ttl_s = gap_ttl_s
        self.subscriptions: dict[int, set[Subscription]] = defaultdict(set)
        self.ready = asyncio.Event()
        self._seen: Horizon | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def horizon(self) -> int:
        """The id up to which every event has been handed out (or given up on)."""
        return self._seen.horizon if self._seen is not None else 0

    async def start(self, wait_s: float = 10.0) -> None:
        """Starts listening; waits (up to `wait_s`) for the first connection."""
        self._task = asyncio.create_task(self._run(), name="event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), wait_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, collection_id: int) -> Subscription:
        subscription = Subscription(collection_id)
        self.subscriptions[collection_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        streams = self.subscriptions.get(subscription.collection_id)
        if streams is not None:
            streams.discard(subscription)
            if not streams:
                del self.subscriptions[subscription.collection_id]

    @property
    def streams(self) -> int:
        return sum(len(s) for s in self.subscriptions.values())

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if self._seen is None:
                        cursor = await conn.execute(
                            "SELECT coalesce(max(id), 0) FROM document_events"
                        )
                        row = await cursor.fetchone()
                        self._seen = Horizon(int(row[0]) if row else 0, self.gap_ttl_s)
                    await self._read(conn)  # what came while it was away
                    self.ready.set()
                    delay = 0.5
                    while True:
                        async for _ in conn.notifies(timeout=RECHECK_S, stop_after=1):
                            pass
                        await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a lost connection: reconnect, nothing is lost
                log.warning("event listener lost its connection (%s); reconnecting", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _read(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Reads the events past the newest seen and in the open gaps; hands out the new."""
        seen = self._seen
        assert seen is not None
        while True:
            now = time.monotonic()
            seen.expire(now)
            clauses, params = ["id > %s"], [seen.newest]
            for gap in seen.gaps[:GAPS_READ]:
                clauses.append("id BETWEEN %s AND %s")
                params += [gap.low, gap.high]
            cursor = await conn.execute(
                f"SELECT {COLUMNS} FROM document_events WHERE {' OR '.join(clauses)}"
                f" ORDER BY id LIMIT {PAGE}",
                params,
            )
            events = [DocumentEvent(*row) for row in await cursor.fetchall()]
            fresh = set(seen.saw([e.id for e in events], now))
            for event in events:
                if event.id in fresh:
                    for subscription in list(self.subscriptions.get(event.collection_id, ())):
                        subscription.offer(event)
            if len(events) < PAGE:
                return
