"""The OpenAI chat API over grounded answers: `POST /v1/chat/completions` with
`"model": "groundwire/<collection>"` answers the last user message from that collection, in the
OpenAI format (whole, or its streamed chunks), with the checked sentences and citations in a
`groundwire` field of the message (of the last chunk's delta when streamed); `GET /v1/models`
lists the collections the key can read. Any OpenAI client or chat UI can then use a collection
as a grounded model. Earlier turns of the conversation are not searched: the question is the
last user message.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from services.answers import service
from services.answers.chat import Completion
from services.answers.routes import chat_model, checker
from services.answers.schemas import AnswerRequest, AnswerResponse
from services.answers.streaming import failure, relay
from services.api.deps import Reader, RerankDep, RuntimeDep, SessionDep, find_collection
from services.api.errors import ApiError, error_responses
from services.api.ratelimit import QueryLimit
from services.collections.service import list_collections
from services.query.routes import QueryVectorsDep

PREFIX = "groundwire/"
router = APIRouter(
    tags=["openai-compatible"],
    responses=error_responses(400, 401, 403, 404, 422, 429, 502, 503, 504),
)


class ChatMessage(BaseModel):
    """One message of the conversation (text, or OpenAI's list of content parts)."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request; sampling options are accepted and left to the collection."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="groundwire/<collection>")
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False


class ModelCard(BaseModel):
    """A collection, as a model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "groundwire"


class ModelList(BaseModel):
    """The collections the key can read."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def _question(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            text = message.content
        else:
            parts = message.content or []
            text = " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")
        if text.strip():
            return text.strip()[:8000]
    raise ApiError(422, "no_question", "the conversation has no user message with text")


@router.get("/v1/models", response_model=ModelList)
def models(caller: Reader, session: SessionDep) -> ModelList:
    """The collections this key can read, as `groundwire/<collection>` models."""
    return ModelList(
        data=[
            ModelCard(id=PREFIX + c.name, created=int(c.created_at.timestamp()))
            for c in list_collections(session, caller)
        ]
    )


@router.post("/v1/chat/completions")
def chat_completions(
    caller: Reader,
    _: QueryLimit,
    body: ChatCompletionRequest,
    session: SessionDep,
    vectors: QueryVectorsDep,
    runtime: RuntimeDep,
    request: Request,
    reranker: RerankDep,
) -> Response:
    """A grounded answer in OpenAI's chat format, from the collection the model names."""
    if not body.model.startswith(PREFIX):
        raise ApiError(
            404, "model_not_found", f"models here are {PREFIX}<collection>, not {body.model!r}"
        )
    collection = find_collection(session, caller, body.model[len(PREFIX) :])
    try:
        question = AnswerRequest(query=_question(body.messages))
    except ValidationError as error:
        reason = error.errors(include_url=False)[0]["msg"]
        raise ApiError(422, "invalid_question", f"the last user message: {reason}") from None
    settings = runtime.settings
    principals = caller.reader_principals(None)
    prepared = service.prepare(
        session, vectors, settings, collection, question, principals, reranker=reranker
    )
    session.commit()
    support = checker(request, prepared)
    reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if not prepared.packed.spans:
        answer = service.answer_no_context(session, settings, collection, question, prepared)
        session.commit()
        completion = Completion(text=answer.answer, model=body.model)
        if body.stream:
            return _streamed(
                _one(answer.answer), lambda: answer, body.model, reply_id, created, request
            )
        return _whole(answer, completion, body.model, reply_id, created)
    chat = chat_model(request)
    if body.stream:
        completion = Completion(text="", model=prepared.model)

        def checked() -> AnswerResponse:
            return service.finish_streamed(
                runtime.database,
                settings,
                collection,
                question,
                prepared,
                completion,
                support,
            )

        deltas = relay(request, chat.stream(prepared.model, prepared.messages, completion))
        return _streamed(deltas, checked, body.model, reply_id, created, request)

    answer, completion = service.answer_whole(
        session, vectors, settings, collection, question, principals, prepared, chat, support
    )
    session.commit()
    return _whole(answer, completion, body.model, reply_id, created)


def _groundwire(answer: AnswerResponse) -> dict[str, Any]:
    """What the `groundwire` field carries: the checked answer but its text."""
    return answer.model_dump(mode="json", exclude={"answer"})


def _whole(
    answer: AnswerResponse, completion: Completion, model: str, reply_id: str, created: int
) -> Response:
    usage = answer.usage
    body = {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.answer,
                    "groundwire": _groundwire(answer),
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        },
    }
    return Response(json.dumps(body), media_type="application/json")


async def _one(text: str) -> AsyncIterator[str]:
    yield text


def _streamed(
    deltas: AsyncIterator[str],
    checked: Callable[[], AnswerResponse],
    model: str,
    reply_id: str,
    created: int,
    request: Request,
) -> StreamingResponse:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            async for delta in deltas:
                yield chunk({"content": delta})
        except Exception as error:  # the response has begun: an error chunk, never a cut
            yield f"data: {json.dumps(failure(error))}\n\n".encode()
            return
        if await request.is_disconnected():
            return  # the client left: the answer was not given, so it is not logged
        answer = await anyio.to_thread.run_sync(checked)
        usage = answer.usage
        yield chunk(
            {"groundwire": _groundwire(answer)},
            "stop",
            usage={
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        )
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
