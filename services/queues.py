"""The queue-depth signal for autoscalers: broker queue lengths and the oldest waiting work."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.config import get_settings
from services.deps import get_session
from services.errors import ApiError
from services.models import PROCESSING, QUEUED, Document

router = APIRouter(tags=["operations"])


class QueueDepth(BaseModel):
    """One broker queue, with the database's view of the work behind it."""

    name: str
    messages: int
    queued_documents: int
    processing_documents: int
    oldest_queued_age_seconds: float | None


class Queues(BaseModel):
    """Every work queue."""

    queues: list[QueueDepth]


def broker_lengths(names: list[str]) -> dict[str, int]:
    """Returns the number of messages waiting in each named Redis list (kombu's queues)."""
    client = redis.Redis.from_url(get_settings().redis_url or "redis://127.0.0.1:6379/0")
    try:
        return {name: int(client.llen(name)) for name in names}
    except redis.RedisError as error:
        raise ApiError(503, "broker_unavailable", f"the broker is unreachable: {error}") from error
    finally:
        client.close()


@router.get("/v1/queues", response_model=Queues)
def queues(session: Session = Depends(get_session)) -> object:
    """Queue lengths and the age of the oldest queued document, for autoscaling workers."""
    name = get_settings().ingest_queue
    counts = dict(
        session.execute(
            select(Document.status, func.count())
            .where(Document.status.in_((QUEUED, PROCESSING)))
            .group_by(Document.status)
        ).all()
    )
    oldest = session.scalar(
        select(func.extract("epoch", func.now() - func.min(Document.enqueued_at))).where(
            Document.status == QUEUED
        )
    )
    return Queues(
        queues=[
            QueueDepth(
                name=name,
                messages=broker_lengths([name])[name],
                queued_documents=int(counts.get(QUEUED, 0)),
                processing_documents=int(counts.get(PROCESSING, 0)),
                oldest_queued_age_seconds=float(oldest) if oldest is not None else None,
            )
        ]
    )
