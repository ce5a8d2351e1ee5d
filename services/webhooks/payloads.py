"""What a receiver gets: the Standard Webhooks body (`{"type", "timestamp", "data"}`) and
headers (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`),
signed by the `standardwebhooks` package; and the retry schedule. Pure functions."""

from __future__ import annotations

import base64
import json
import random
import secrets
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

EVENT_TYPES = (
    "document.done",
    "document.failed",
    "batch.finished",
    "migration.ready",
    "migration.active",
    "migration.rolled_back",
    "migration.failed",
)
USER_AGENT = "Groundwire-Webhooks/1"


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def body(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> bytes:
    """The body of an event: the same bytes on every attempt."""
    timestamp = occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    document = {"type": event_type, "timestamp": timestamp, "data": data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def headers(secret: str, message_id: str, payload: bytes, now: datetime) -> dict[str, str]:
    """The headers of one attempt, signed with `secret` at `now`."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, payload),
    }


def backoff_s(
    attempts: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after the `attempts`-th failed try: `base_s` doubling up to `max_s`,
    spread by ±10% so receivers coming back are not hit by every sender at once."""
    delay = min(max_s, base_s * 2 ** max(0, attempts - 1))
    spread = (rng or random).uniform(0.9, 1.1)
    return float(min(max_s, delay * spread))
