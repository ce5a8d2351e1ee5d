"""HTTP route for grounded answers, whole or as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from services.answers import service
from services.answers.chat import ChatModel, Completion
from services.answers.checkers import SupportChecker, support_checker
from services.answers.schemas import AnswerRequest, AnswerResponse
from services.answers.streaming import failure, relay
from services.api.deps import (
    CollectionDep,
    Reader,
    ReaderDep,
    RerankDep,
    RuntimeDep,
    SessionDep,
)
from services.api.errors import error_responses
from services.api.ratelimit import QueryLimit
from services.models import Collection
from services.query.routes import QueryVectorsDep
from services.runtime import Runtime

router = APIRouter(
    tags=["answers"],
    responses=error_responses(400, 401, 403, 404, 413, 422, 429, 502, 503, 504),
)
EMBEDDER = "local"  # the support checker's similarity: the bundled model, whatever the collection's


def chat_model(request: Request) -> ChatModel:
    """The app's chat client, made on first use."""
    state = request.app.state
    if getattr(state, "chat", None) is None:
        state.chat = ChatModel(state.runtime.settings)
    chat: ChatModel = state.chat
    return chat


def checker(request: Request, prepared: service.Prepared) -> SupportChecker:
    """The support checker the settings name (GROUNDWIRE_SUPPORT_CHECK), for this answer."""
    state = request.app.state
    runtime: Runtime = state.runtime
    return support_checker(
        runtime.settings,
        lambda: chat_model(request),
        prepared.model,
        lambda: runtime.embedders.get(EMBEDDER).embed,
        state.support_model,
    )


@router.post(
    "/v1/collections/{name}/answer",
    response_model=AnswerResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def answer(
    caller: Reader,
    _: QueryLimit,
    collection: CollectionDep,
    body: AnswerRequest,
    session: SessionDep,
    vectors: QueryVectorsDep,
    runtime: RuntimeDep,
    request: Request,
    reranker: RerankDep,
    reader: ReaderDep,
) -> Response | AnswerResponse:
    """Answers from the collection's passages, each sentence checked against what it cites;
    `no_context` (the model is not called) when nothing is relevant."""
    settings = runtime.settings
    principals = caller.reader_principals(body.principals)
    prepared = service.prepare(
        reader, vectors, settings, collection, body, principals, reranker=reranker
    )
    session.commit()  # no transaction stays open while the model writes
    support = checker(request, prepared)
    if not prepared.packed.spans:
        response = service.answer_no_context(session, settings, collection, body, prepared)
        session.commit()
        if body.stream:
            return _events(iter([("delta", {"text": response.answer})]), response)
        return response
    chat = chat_model(request)
    if body.stream:
        return StreamingResponse(
            _stream(request, runtime, chat, collection, body, prepared, support),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    response, _completion = service.answer_whole(
        session, vectors, settings, collection, body, principals, prepared, chat, support
    )
    session.commit()
    return response


def _event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _events(deltas: Iterator[tuple[str, object]], response: AnswerResponse) -> StreamingResponse:
    def body() -> Iterator[bytes]:
        for name, data in deltas:
            yield _event(name, data)
        yield _event("citations", response.model_dump(mode="json"))
        yield _event("done", {})

    return StreamingResponse(body(), media_type="text/event-stream")


async def _stream(
    request: Request,
    runtime: Runtime,
    chat: ChatModel,
    collection: Collection,
    body: AnswerRequest,
    prepared: service.Prepared,
    support: SupportChecker,
) -> AsyncIterator[bytes]:
    """`delta` events as the model writes, then `citations` (the checked answer), then `done`;
    an `error` event if the model fails on the way. A client that leaves stops the model."""
    completion = Completion(text="", model=prepared.model)
    try:
        async for delta in relay(
            request, chat.stream(prepared.model, prepared.messages, completion)
        ):
            yield _event("delta", {"text": delta})
    except Exception as error:  # the response has begun: an error event, never a cut
        yield _event("error", failure(error))
        return
    if await request.is_disconnected():
        return  # a client that left: the answer was not given, so it is not logged
    response = await anyio.to_thread.run_sync(
        service.finish_streamed,
        runtime.database,
        runtime.settings,
        collection,
        body,
        prepared,
        completion,
        support,
    )
    yield _event("citations", response.model_dump(mode="json"))
    yield _event("done", {})
