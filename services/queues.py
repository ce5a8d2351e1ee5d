"""The queue-depth signal for autoscalers: broker queue lengths and the oldest waiting work."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.config import get_settings
from services.deps import get_session
from services.errors import ApiError
from services.models import PROCESSING, QUEUED, Document

router = APIRouter(tags=["operations"])


class QueueDepth(BaseModel):
    """One broker queue, with the database's view of the documents waiting on that stage.

    `ingest` parses and chunks: its documents are `queued`. `embed` embeds and writes: its
    documents are `processing` (chunked and waiting, or being embedded).
    """

    name: str
    stage: str
    messages: int
    documents: int
    oldest_age_seconds: float | None


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


def waiting(session: Session) -> dict[str, tuple[int, float | None]]:
    """Returns, per unfinished status, how many documents and the oldest one's age in seconds."""
    since = case(
        (Document.status == QUEUED, Document.enqueued_at),
        else_=func.coalesce(Document.started_at, Document.enqueued_at),
    )
    rows = session.execute(
        select(Document.status, func.count(), func.extract("epoch", func.now() - func.min(since)))
        .where(Document.status.in_((QUEUED, PROCESSING)))
        .group_by(Document.status)
    )
    return {status: (int(n), float(age) if age is not None else None) for status, n, age in rows}


def stages() -> dict[str, tuple[str, str]]:
    """Each stage's broker queue and the document status that waits on it."""
    settings = get_settings()
    return {"ingest": (settings.ingest_queue, QUEUED), "embed": (settings.embed_queue, PROCESSING)}


@router.get("/v1/queues", response_model=Queues)
def queues(session: Session = Depends(get_session)) -> object:
    """Queue lengths, waiting documents and the oldest one's age per stage, for autoscalers."""
    lengths = broker_lengths([name for name, _ in stages().values()])
    counts = waiting(session)
    return Queues(
        queues=[
            QueueDepth(
                name=name,
                stage=stage,
                messages=lengths[name],
                documents=counts.get(status, (0, None))[0],
                oldest_age_seconds=counts.get(status, (0, None))[1],
            )
            for stage, (name, status) in stages().items()
        ]
    )
