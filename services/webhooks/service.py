"""Webhooks of a workspace: made, listed and deleted by its admins, with their deliveries.

A key limited to some collections makes webhooks for those only (none named: all of its
own), and sees only webhooks whose collections it can all reach; any other webhook is
answered as absent.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.access.caller import Caller
from services.api.errors import ApiError
from services.models import Collection, Webhook, WebhookAttempt, WebhookDelivery
from services.webhooks import payloads
from services.webhooks.addresses import UrlRefused, check_url
from services.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)

ATTEMPTS_SHOWN = 20


def _visible(caller: Caller, webhook: Webhook) -> bool:
    if webhook.workspace_id != caller.workspace_id:
        return False
    if caller.collections is None:
        return True
    return webhook.collections is not None and set(webhook.collections) <= caller.collections


def out(webhook: Webhook) -> WebhookOut:
    """A webhook as the API shows it (never its secret)."""
    return WebhookOut(
        id=webhook.id,
        url=webhook.url,
        events=list(webhook.events),
        collections=list(webhook.collections) if webhook.collections is not None else None,
        created_at=webhook.created_at,
    )


def create(
    session: Session, caller: Caller, body: WebhookCreate, allow_private: bool
) -> WebhookCreated:
    """Makes a webhook; its secret is in this answer and nowhere else."""
    try:
        check_url(body.url, allow_private)
    except UrlRefused as refused:
        raise ApiError(422, refused.code, refused.message) from None
    collections = sorted(set(body.collections)) if body.collections is not None else None
    if collections is not None:
        found = set(
            session.scalars(
                select(Collection.name).where(
                    Collection.workspace_id == caller.workspace_id,
                    Collection.name.in_(collections),
                )
            )
        )
        for name in collections:
            if name not in found or not caller.sees_collection(name):
                raise ApiError(404, "collection_not_found", f"no collection {name!r}")
    elif caller.collections is not None:
        collections = sorted(caller.collections)
    secret = payloads.new_secret()
    webhook = Webhook(
        id=uuid.uuid4(),
        workspace_id=caller.workspace_id,
        url=body.url,
        events=sorted(set(body.events)),
        collections=collections,
        secret=secret,
        created_by=caller.key_id,
    )
    session.add(webhook)
    session.flush()
    session.refresh(webhook)
    return WebhookCreated(**out(webhook).model_dump(), secret=secret)


def listed(session: Session, caller: Caller) -> list[WebhookOut]:
    """The webhooks the caller may see, oldest first."""
    rows = session.scalars(
        select(Webhook)
        .where(Webhook.workspace_id == caller.workspace_id)
        .order_by(Webhook.created_at, Webhook.id)
    )
    return [out(w) for w in rows if _visible(caller, w)]


def get(session: Session, caller: Caller, webhook_id: uuid.UUID) -> Webhook:
    """The webhook, or 404 when it is absent or the caller may not see it."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or not _visible(caller, webhook):
        raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id}")
    return webhook


def delete(session: Session, caller: Caller, webhook_id: uuid.UUID) -> None:
    """Deletes the webhook and its deliveries (pending ones are never sent)."""
    session.delete(get(session, caller, webhook_id))


def _latest_attempts(
    session: Session, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """Each delivery's latest ATTEMPTS_SHOWN attempts, oldest first (only those are read)."""
    if not delivery_ids:
        return {}
    newest = (
        func.row_number()
        .over(partition_by=WebhookAttempt.delivery_id, order_by=WebhookAttempt.id.desc())
        .label("newest")
    )
    ranked = (
        select(WebhookAttempt.id, newest)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .subquery()
    )
    rows = session.scalars(
        select(WebhookAttempt)
        .join(ranked, ranked.c.id == WebhookAttempt.id)
        .where(ranked.c.newest <= ATTEMPTS_SHOWN)
        .order_by(WebhookAttempt.id)
    )
    out: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for attempt in rows:
        out.setdefault(attempt.delivery_id, []).append(attempt)
    return out


def _delivery_out(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        event_type=delivery.event_type,
        occurred_at=delivery.occurred_at,
        data=delivery.data,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        delivered_at=delivery.delivered_at,
        last_status_code=delivery.last_status_code,
        last_latency_ms=delivery.last_latency_ms,
        last_error=delivery.last_error,
        attempt_log=[
            AttemptOut(at=a.at, status_code=a.status_code, latency_ms=a.latency_ms, error=a.error)
            for a in attempts
        ],
        status_codes=[a.status_code for a in attempts],
        latencies_ms=[a.latency_ms for a in attempts],
    )


def deliveries(
    session: Session,
    caller: Caller,
    webhook_id: uuid.UUID,
    status: str | None,
    limit: int,
    before: int | None,
) -> tuple[list[DeliveryOut], int | None]:
    """The webhook's deliveries, newest first, each with its latest attempts."""
    get(session, caller, webhook_id)
    query: Any = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.seq < before)
    rows = list(session.scalars(query.order_by(WebhookDelivery.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    attempts = _latest_attempts(session, [r.id for r in rows])
    shown = [_delivery_out(r, attempts.get(r.id, [])) for r in rows]
    return shown, (rows[-1].seq if more else None)


def retry(
    session: Session, caller: Caller, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryOut:
    """Sends the delivery again at the next tick (a delivered one too: its receiver gets it
    once more, with the same webhook-id); a failed one gets a new retry window."""
    get(session, caller, webhook_id)
    delivery = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id)
        .values(status="pending", next_attempt_at=func.now(), retry_from=func.now())
        .returning(WebhookDelivery)
    ).scalar_one_or_none()
    if delivery is None:
        raise ApiError(404, "delivery_not_found", f"no delivery {delivery_id}")
    return _delivery_out(delivery, _latest_attempts(session, [delivery_id]).get(delivery_id, []))
