"""The delivery tick: run by beat every GROUNDWIRE_WEBHOOK_POLL_S on the webhook queue.

It writes the events of batches that finished, then claims due deliveries, sends them
(each receiver's in order, receivers side by side), and records every attempt. One tick at a
time delivers (a PostgreSQL advisory lock; a tick that finds it taken returns at once), so
ticks queued behind a slow receiver never fill a worker's pool. A receiver that fails with
a connection error, a timeout, 429 or a 5xx gets no more of this round's events: they wait
for its next attempt, so a receiver that is down costs one request per round, not one per
event. Delivery is at least once: a tick that dies between sending and recording sends
again after its claim runs out, with the same `webhook-id`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from functools import partial
from itertools import groupby

import httpx
from sqlalchemy import func, select

from services.config import Settings
from services.db import Database
from services.webhooks import outbox, payloads
from services.webhooks.addresses import UrlRefused, check_url
from services.webhooks.outbox import Claimed, Outcome

log = logging.getLogger(__name__)

LOCK_KEY = 0x67_77_68_6B  # the tick's advisory lock
CLAIM_S = 60.0  # a claimed delivery is another tick's again after this
ROUND_S = 25.0  # a receiver's share of one round; the rest of its events wait
TICK_S = 20.0  # a tick stops claiming after this (beat starts the next)
PER_ROUND = 100  # deliveries claimed per receiver slot and round
ERROR_CHARS = 300


def _retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def deliver_group(
    client: httpx.Client,
    claims: list[Claimed],
    settings: Settings,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Sends one receiver's claimed deliveries in order; stops at the first sign that the
    receiver is down or overloaded and puts the rest back to go with its next attempt."""
    outcomes: list[Outcome] = []
    started = clock()
    stop: float | None = None  # the delay the rest waits once the receiver failed
    for claimed in claims:
        if stop is not None or clock() - started > ROUND_S:
            outcomes.append(Outcome(claimed.id, tried=False, delay_s=stop or 0.0))
            continue
        outcome = _send(client, claimed, settings)
        outcomes.append(outcome)
        if not outcome.ok and (outcome.status_code is None or _retryable(outcome.status_code)):
            stop = outcome.delay_s
    return outcomes


def _send(client: httpx.Client, claimed: Claimed, settings: Settings) -> Outcome:
    delay = payloads.backoff_s(
        claimed.attempts + 1, settings.webhook_retry_base_s, settings.webhook_retry_max_s
    )
    begun = time.perf_counter()
    try:
        check_url(claimed.url, settings.webhook_allow_private)
        body = payloads.body(claimed.event_type, claimed.occurred_at, claimed.data)
        now = datetime.now(UTC)
        headers = payloads.headers(claimed.secret, str(claimed.id), body, now)
        response = client.post(claimed.url, content=body, headers=headers)
    except UrlRefused as refused:
        latency = (time.perf_counter() - begun) * 1000
        return Outcome(claimed.id, True, latency_ms=latency, error=refused.message, delay_s=delay)
    except Exception as error:
        latency = (time.perf_counter() - begun) * 1000
        reason = f"{type(error).__name__}: {error}"[:ERROR_CHARS]
        if not isinstance(error, httpx.HTTPError):
            log.warning("webhook delivery %s failed unexpectedly: %s", claimed.id, reason)
        return Outcome(claimed.id, True, latency_ms=latency, error=reason, delay_s=delay)
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
            return _deliver(database, settings)
        finally:
            lock.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
            lock.commit()


def _deliver(database: Database, settings: Settings) -> int:
    """Sends what is due until nothing is or the tick's time is up. Each receiver's claimed
    deliveries go to a thread of their own and are recorded as soon as they are done, so a
    slow receiver holds up only itself while the others' next deliveries are claimed."""
    with database.scope() as session:
        outbox.finish_batches(session)
    attempts = 0
    deadline = time.monotonic() + TICK_S
    workers = settings.webhook_concurrency
    timeout = httpx.Timeout(settings.webhook_timeout_s)
    in_flight: dict[Future[list[Outcome]], uuid.UUID] = {}
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        ThreadPoolExecutor(workers, thread_name_prefix="webhook") as pool,
    ):
        idle = False  # the last claim found nothing
        while in_flight or (not idle and time.monotonic() < deadline):
            if not idle and len(in_flight) < workers and time.monotonic() < deadline:
                with database.scope() as session:
                    claimed = outbox.claim(
                        session, PER_ROUND * workers, CLAIM_S, list(in_flight.values())
                    )
                idle = not claimed
                for webhook_id, group in groupby(
                    sorted(claimed, key=lambda c: (c.webhook_id, c.seq)),
                    key=lambda c: c.webhook_id,
                ):
                    send = partial(deliver_group, client, list(group), settings)
                    in_flight[pool.submit(send)] = webhook_id
            if not in_flight:
                break
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            outcomes = []
            for future in finished:
                del in_flight[future]
                outcomes.extend(future.result())
            with database.scope() as session:
                outbox.record(session, outcomes, settings.webhook_retry_for_s)
            tried = [o for o in outcomes if o.tried]
            attempts += len(tried)
            if any(o.ok for o in tried):
                idle = False  # a receiver took its events: more of its own may be due
            failed = sum(not o.ok for o in tried)
            if failed:
                log.warning("webhook deliveries: %d of %d attempts failed", failed, len(tried))
    return attempts
