"""HTTP routes of webhooks (a workspace's admins)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.api.deps import Admin, RuntimeDep, SessionDep
from services.api.errors import error_responses
from services.webhooks import service
from services.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)

router = APIRouter(tags=["webhooks"], responses=error_responses(400, 401, 403, 404, 422, 503))


@router.post("/v1/webhooks", status_code=201, response_model=WebhookCreated)
def create_webhook(
    caller: Admin, body: WebhookCreate, session: SessionDep, runtime: RuntimeDep
) -> WebhookCreated:
    """Makes a webhook: `document.done`, `document.failed` and `batch.finished` events of the
    workspace (or of `collections`) are POSTed to `url`, signed as Standard Webhooks with the
    `secret` of this answer (shown here only). Private and loopback URLs are refused unless
    the server allows them."""
    created = service.create(session, caller, body, runtime.settings.webhook_allow_private)
    session.commit()
    return created


@router.get("/v1/webhooks", response_model=WebhookList)
def list_webhooks(caller: Admin, session: SessionDep) -> WebhookList:
    """The workspace's webhooks (never their secrets)."""
    return WebhookList(webhooks=service.listed(session, caller))


@router.get("/v1/webhooks/{webhook_id}", response_model=WebhookOut)
def get_webhook(caller: Admin, webhook_id: uuid.UUID, session: SessionDep) -> WebhookOut:
    """One webhook (never its secret)."""
    return service.out(service.get(session, caller, webhook_id))


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(caller: Admin, webhook_id: uuid.UUID, session: SessionDep) -> Response:
    """Deletes a webhook; what it had not delivered yet is never sent."""
    service.delete(session, caller, webhook_id)
    session.commit()
    return Response(status_code=204)


@router.get("/v1/webhooks/{webhook_id}/deliveries", response_model=DeliveryList)
def list_deliveries(
    caller: Admin,
    webhook_id: uuid.UUID,
    session: SessionDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> DeliveryList:
    """The webhook's deliveries, newest first: status, attempts with their status codes and
    latency, and when the next try is due."""
    shown, next_before = service.deliveries(session, caller, webhook_id, status, limit, before)
    return DeliveryList(deliveries=shown, next_before=next_before)


@router.post(
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
)
def retry_delivery(
    caller: Admin, webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep
) -> DeliveryOut:
    """Sends a delivery again at the next tick, with the same webhook-id."""
    retried = service.retry(session, caller, webhook_id, delivery_id)
    session.commit()
    return retried
