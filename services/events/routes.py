"""HTTP routes of the event streams."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from services.api.deps import CollectionDep, Reader, RuntimeDep, SessionDep
from services.api.errors import ApiError, error_responses
from services.api.ratelimit import QueryLimit
from services.events.hub import EventHub
from services.events.streams import batch_events, collection_events
from services.ingest import service as ingest
from services.models import IngestBatch

router = APIRouter(tags=["events"], responses=error_responses(400, 401, 403, 404, 429))

STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
EVENTS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}
}


def is_event_stream(path: str) -> bool:
    """Whether a request path is one of these streams (they hold no request slot once they
    have begun: services/api/overload.py)."""
    return path.endswith("/events") and path.startswith(("/v1/batches/", "/v1/collections/"))


def _hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.events
    return hub


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = int(value)
    except ValueError:
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID is not an event id") from None
    if parsed < 0:
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID is not an event id")
    return parsed


@router.get("/v1/collections/{name}/events", response_class=StreamingResponse, responses=EVENTS)
def collection_stream(
    caller: Reader,
    _: QueryLimit,
    collection: CollectionDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """`document` events (`{"id", "version", "status", "error_class"?}`) as the collection's
    documents change, until the client leaves; Last-Event-ID replays what it missed."""
    after = _last_event_id(last_event_id)
    # The request's session would stay open as long as the stream: give its connection back
    # now (a stream reads what it needs in short transactions of its own).
    session.close()
    stream = collection_events(
        _hub(request),
        runtime.database,
        collection.id,
        ingest.readable_by(caller),
        after,
        runtime.settings.events_heartbeat_s,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.get("/v1/batches/{batch_id}/events", response_class=StreamingResponse, responses=EVENTS)
def batch_stream(
    caller: Reader,
    _: QueryLimit,
    batch_id: uuid.UUID,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """`progress` events (`{"total", "queued", "processing", "done", "failed",
    "unchanged"}`) as the batch's documents change, then `finished`, and the stream ends."""
    _last_event_id(last_event_id)  # a count needs no replay: the current one is sent
    ingest.batch_progress(session, caller, batch_id)  # 404 unless the caller may see it
    batch = session.get(IngestBatch, batch_id)
    assert batch is not None
    collection_id = batch.collection_id
    session.close()  # as above: the stream holds no connection
    database = runtime.database

    def progress() -> dict[str, Any]:
        with database.scope() as own:
            out = ingest.batch_progress(own, caller, batch_id)
        return {
            "total": out.total,
            "queued": out.queued,
            "processing": out.processing,
            "done": out.done,
            "failed": out.failed,
            "unchanged": out.unchanged,
            "finished": out.finished,
        }

    stream = batch_events(
        _hub(request),
        database,
        collection_id,
        batch_id,
        progress,
        runtime.settings.events_heartbeat_s,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)
