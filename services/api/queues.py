"""The queue-depth signal for autoscalers: broker queue lengths and the oldest waiting work."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from services.api.deps import RuntimeDep, ServerAdmin, SessionDep
from services.api.errors import error_responses
from services.broker import Broker
from services.models import Document
from services.statuses import PENDING, DocumentStatus

router = APIRouter(tags=["operations"], responses=error_responses(401, 403, 404, 413, 503))

# The document status that waits on each stage.
STAGE_STATUS = {"ingest": DocumentStatus.QUEUED, "embed": DocumentStatus.PROCESSING}


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


def waiting(
    session: Session, collection_id: int | None = None
) -> dict[str, tuple[int, float | None]]:
    """Returns, per unfinished status, how many documents and the oldest one's age in seconds
    (of one collection, or of all)."""
    since = case(
        (Document.status == DocumentStatus.QUEUED, Document.enqueued_at),
        else_=func.coalesce(Document.started_at, Document.enqueued_at),
    )
    rows = session.execute(
        select(Document.status, func.count(), func.extract("epoch", func.now() - func.min(since)))
        .where(
            Document.status.in_(PENDING),
            *([Document.collection_id == collection_id] if collection_id is not None else []),
        )
        .group_by(Document.status)
    )
    return {status: (int(n), float(age) if age is not None else None) for status, n, age in rows}


def queue_depths(session: Session, broker: Broker) -> list[QueueDepth]:
    """Reads each stage's broker queue length and the documents waiting on it."""
    stages = broker.stages()
    lengths = broker.queue_lengths(list(stages.values()))
    counts = waiting(session)
    return [
        QueueDepth(
            name=name,
            stage=stage,
            messages=lengths[name],
            documents=counts.get(STAGE_STATUS[stage], (0, None))[0],
            oldest_age_seconds=counts.get(STAGE_STATUS[stage], (0, None))[1],
        )
        for stage, name in stages.items()
    ]


@router.get("/v1/queues", response_model=Queues)
def queues(caller: ServerAdmin, session: SessionDep, runtime: RuntimeDep) -> Queues:
    """Queue lengths, waiting documents and the oldest one's age per stage, for autoscalers
    (server admin only: it counts every workspace's work)."""
    return Queues(queues=queue_depths(session, runtime.broker))
