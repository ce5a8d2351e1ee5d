"""The delivery tick: run by beat every GROUNDWIRE_WEBHOOK_POLL_S on the webhook queue.

It writes the events of batches that finished, then claims due deliveries and sends them,
each receiver's in order and up to GROUNDWIRE_WEBHOOK_CONCURRENCY receivers side by side,
recording each receiver's attempts as soon as it is done, so a slow receiver holds up only
itself. Every request has a total deadline (GROUNDWIRE_WEBHOOK_TIMEOUT_S) however slowly the
receiver trickles its answer, and its body is never read; the tick itself stops claiming
after TICK_S and abandons what is still in flight at its hard deadline (those claims lapse
and are sent again), so no receiver can hold the tick.

One tick at a time delivers (a PostgreSQL advisory lock; a tick that finds it taken returns
at once), so ticks queued behind a slow receiver never fill a worker's pool. A receiver that
fails with a connection error, a timeout, 429 or a 5xx gets no more of the round's events:
they wait for its next attempt, so a receiver that is down costs one request per round, not
one per event. Delivery is at least once: a tick that dies between sending and recording
sends again after its claim runs out, with the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from itertools import groupby

import httpx
from sqlalchemy import func, select

from services.config import Settings
from services.db import Database
from services.webhooks import outbox, payloads
from services.webhooks.addresses import UrlRefused, check_url, pinned
from services.webhooks.outbox import Claimed, Outcome

log = logging.getLogger(__name__)

LOCK_KEY = 0x67_77_68_6B  # the tick's advisory lock
CLAIM_S = 60.0  # a claimed delivery is another tick's again after this
ROUND_S = 25.0  # a receiver's share of one round; the rest of its events wait
TICK_S = 20.0  # a tick stops claiming after this (beat starts the next)
HARD_S = 45.0  # and abandons what is still in flight after this (below CLAIM_S)
PER_ROUND = 100  # deliveries claimed per receiver slot and round
ERROR_CHARS = 300


def _retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


async def deliver_group(
    client: httpx.AsyncClient, claims: list[Claimed], settings: Settings
) -> list[Outcome]:
    """Sends one receiver's claimed deliveries in order, to the address its URL resolves to
    now (checked once for the round); stops at the first sign that the receiver is down or
    overloaded and puts the rest back to go with its next attempt."""
    outcomes: list[Outcome] = []
    started = time.monotonic()
    stop: float | None = None  # the delay the rest waits once the receiver failed
    target: Target | UrlRefused | None = None
    for claimed in claims:
        if stop is not None or time.monotonic() - started > ROUND_S:
            outcomes.append(Outcome(claimed.id, tried=False, delay_s=stop or 0.0))
            continue
        if target is None:
            target = await _target(claimed.url, settings.webhook_allow_private)
        outcome = await _send(client, claimed, target, settings)
        outcomes.append(outcome)
        if not outcome.ok and (outcome.status_code is None or _retryable(outcome.status_code)):
            stop = outcome.delay_s
    return outcomes


Target = tuple[str, dict[str, str], dict[str, str]]  # what `pinned` gives


async def _target(url: str, allow_private: bool) -> Target | UrlRefused:
    try:
        return pinned(await asyncio.to_thread(check_url, url, allow_private))
    except UrlRefused as refused:
        return refused


async def _send(
    client: httpx.AsyncClient, claimed: Claimed, target: Target | UrlRefused, settings: Settings
) -> Outcome:
    delay = payloads.backoff_s(
        claimed.attempts + 1, settings.webhook_retry_base_s, settings.webhook_retry_max_s
    )
    begun = time.perf_counter()

    def failed(reason: str) -> Outcome:
        latency = (time.perf_counter() - begun) * 1000
        return Outcome(claimed.id, True, latency_ms=latency, error=reason, delay_s=delay)

    if isinstance(target, UrlRefused):
        return failed(target.message)
    url, host, extensions = target
    body = payloads.body(claimed.event_type, claimed.occurred_at, claimed.data)
    signed = payloads.headers(claimed.secret, str(claimed.id), body, datetime.now(UTC))
    try:
        async with asyncio.timeout(settings.webhook_timeout_s):
            request = client.build_request(
                "POST", url, content=body, headers={**signed, **host}, extensions=extensions
            )
            response = await client.send(request, stream=True)  # the body is never read
            await response.aclose()
    except TimeoutError:
        return failed(f"no answer within {settings.webhook_timeout_s:g} s")
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:ERROR_CHARS]
        if not isinstance(error, httpx.HTTPError):
            log.warning("webhook delivery %s failed unexpectedly: %s", claimed.id, reason)
        return failed(reason)
    latency = (time.perf_counter() - begun) * 1000
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(claimed.id, True, ok=True, status_code=code, latency_ms=latency)
    return Outcome(
        claimed.id, True, status_code=code, latency_ms=latency, error=f"HTTP {code}", delay_s=delay
    )


def tick(database: Database, settings: Settings) -> int:
    """One delivery tick; returns how many attempts it made (0 when another tick runs)."""
    with database.engine.connect() as lock:
        if not lock.execute(select(func.pg_try_advisory_lock(LOCK_KEY))).scalar():
            return 0
        lock.commit()  # the lock is the session's: no transaction stays open for it
        try:
            with database.scope() as session:
                outbox.finish_batches(session)
            return asyncio.run(_deliver(database, settings))
        finally:
            lock.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
            lock.commit()


async def _deliver(database: Database, settings: Settings) -> int:
    """Sends what is due until nothing is or the tick's time is up."""
    attempts = 0
    began = time.monotonic()
    workers = settings.webhook_concurrency
    in_flight: dict[asyncio.Task[list[Outcome]], uuid.UUID] = {}
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers)
    async with httpx.AsyncClient(follow_redirects=False, limits=limits, timeout=None) as client:
        idle = False  # the last claim found nothing
        while True:
            now = time.monotonic() - began
            if not idle and len(in_flight) < workers and now < TICK_S:
                busy = list(in_flight.values())
                claimed = await asyncio.to_thread(_claim, database, PER_ROUND * workers, busy)
                idle = not claimed
                for webhook_id, group in groupby(
                    sorted(claimed, key=lambda c: (c.webhook_id, c.seq)),
                    key=lambda c: c.webhook_id,
                ):
                    task = asyncio.create_task(deliver_group(client, list(group), settings))
                    in_flight[task] = webhook_id
            if not in_flight:
                break
            left = HARD_S - (time.monotonic() - began)
            if left <= 0:
                for task in in_flight:  # their claims lapse: the next tick sends them
                    task.cancel()
                log.warning("webhook tick abandoned %d receivers at its deadline", len(in_flight))
                break
            done, _ = await asyncio.wait(
                list(in_flight), timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            outcomes: list[Outcome] = []
            for task in done:
                del in_flight[task]
                outcomes.extend(task.result())
            if not outcomes:
                continue
            await asyncio.to_thread(_record, database, outcomes, settings.webhook_retry_for_s)
            tried = [o for o in outcomes if o.tried]
            attempts += len(tried)
            if any(o.ok for o in tried):
                idle = False  # a receiver took its events: more of its own may be due
            failed = sum(not o.ok for o in tried)
            if failed:
                log.warning("webhook deliveries: %d of %d attempts failed", failed, len(tried))
    return attempts


def _claim(database: Database, limit: int, busy: list[uuid.UUID]) -> list[Claimed]:
    with database.scope() as session:
        return outbox.claim(session, limit, CLAIM_S, busy)


def _record(database: Database, outcomes: list[Outcome], retry_for_s: float) -> None:
    with database.scope() as session:
        outbox.record(session, outcomes, retry_for_s)
