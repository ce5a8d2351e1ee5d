"""Request and response bodies of the webhooks API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.access.schemas import CollectionName

EventType = Literal[
    "document.done",
    "document.failed",
    "batch.finished",
    "migration.ready",
    "migration.active",
    "migration.rolled_back",
    "migration.failed",
]


class WebhookCreate(BaseModel):
    """A receiver and the events it wants."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http:// or https://")
    events: list[EventType] = Field(min_length=1, max_length=7)
    collections: list[CollectionName] | None = Field(
        default=None, min_length=1, max_length=1000, description="only these (default: all)"
    )


class WebhookOut(BaseModel):
    """A webhook as listings show it: never its secret."""

    id: uuid.UUID
    url: str
    events: list[str]
    collections: list[str] | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    """A new webhook, with the secret its receiver verifies signatures with (shown once)."""

    secret: str = Field(description="whsec_…: the Standard Webhooks signing secret")


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    """One try: when, the receiver's status code (none: no answer), how long, what failed."""

    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None


class DeliveryOut(BaseModel):
    """One event for one receiver; `id` is the `webhook-id` it is sent with."""

    id: uuid.UUID
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    attempt_log: list[AttemptOut] = Field(description="the latest attempts, oldest first")
    status_codes: list[int | None] = Field(
        description="each logged attempt's status code, as in attempt_log (null: no answer)"
    )
    latencies_ms: list[float] = Field(description="each logged attempt's latency")


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]
    next_before: int | None = Field(
        description="pass as `before` for the next (older) page; null: no more"
    )
