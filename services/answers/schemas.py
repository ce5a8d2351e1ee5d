"""Request and response bodies of the answer API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.query.schemas import (
    RERANKED_DESCRIPTION,
    CitationChunk,
    Location,
    RetrievalRequest,
)

AnswerStatus = Literal["answered", "no_context", "declined", "unsupported"]


class AnswerRequest(RetrievalRequest):
    """A question to answer from the collection's passages."""

    k: int = Field(default=8, ge=1, le=50, description="passages at most given to the model")
    max_context_tokens: int = Field(default=3000, ge=64, le=100_000)
    model: str | None = Field(
        default=None, max_length=200, description="the chat model (default: the collection's)"
    )
    stream: bool = Field(default=False, description="answer as server-sent events")
    strict: bool = Field(default=False, description="leave unsupported sentences out")


class AnswerSentence(BaseModel):
    """A sentence of the answer, the passages it cites, and whether they support it."""

    text: str
    citations: list[int]
    supported: bool
    support_score: float | None = Field(
        description="how strongly the cited passages support it (0-1); null for a sentence"
        " that states nothing to check"
    )


class AnswerCitation(BaseModel):
    """A passage the answer cites as [n]."""

    n: int
    document_id: str
    title: str | None
    source: str | None
    chunk: CitationChunk
    location: Location


class Usage(BaseModel):
    """The chat model's tokens."""

    prompt_tokens: int
    completion_tokens: int


class AnswerResponse(BaseModel):
    """A grounded answer: every sentence checked against what it cites."""

    grounded: bool
    status: AnswerStatus = Field(
        description="answered; no_context (nothing relevant: the model was not called);"
        " declined (the passages do not answer it); unsupported (some sentences are not"
        " supported by what they cite, or cite nothing while stating facts)"
    )
    answer: str
    sentences: list[AnswerSentence]
    citations: list[AnswerCitation]
    model: str | None
    usage: Usage
    threshold: float
    best_score: float | None
    reranked: bool | None = Field(default=None, description=RERANKED_DESCRIPTION)
