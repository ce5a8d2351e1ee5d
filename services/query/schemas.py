"""Request and response bodies of the query and context APIs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.access.schemas import Principal
from services.api.validation import StorableText
from services.query.candidates import Mode

RERANKED_DESCRIPTION = (
    "null: no rerank asked; true: reranked; false: the reranker failed or ran past its"
    " budget, so the passages are in retrieval order"
)


class RetrievalRequest(BaseModel):
    """What every retrieval takes: the question, the mode, a threshold override and a filter."""

    model_config = ConfigDict(extra="forbid")

    query: StorableText = Field(min_length=1, max_length=8000)
    min_score: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="overrides the collection's threshold"
    )
    mode: Mode = "hybrid"
    filter: dict[str, Any] | None = Field(
        default=None, description="metadata filter, e.g. {'team': 'hr', 'year': {'$gte': 2020}}"
    )
    principals: list[Principal] | None = Field(
        default=None,
        max_length=1000,
        description="the end user's principals (keys that act for principals only)",
    )
    space: Literal["active", "shadow"] = Field(
        default="active",
        description="`shadow`: search the space an open migration is building (to try it"
        " before switching); such requests are not logged",
    )
    rerank: bool | None = Field(
        default=None,
        description="reorder the best passages with the server's reranker (default: the"
        " collection's `rerank`); a reranker that fails or runs past its budget leaves the"
        " retrieval order, and the response says `reranked: false`",
    )


class QueryRequest(RetrievalRequest):
    """A question and how many passages to return at most."""

    k: int = Field(default=5, ge=1, le=100)


class PageLocation(BaseModel):
    """A page of the original: PDF pages, slides, images (page 1); 1-based."""

    page: int


class TimeLocation(BaseModel):
    """A stretch of a recording, in seconds from its start."""

    start_seconds: float
    end_seconds: float


Location = PageLocation | TimeLocation | None
LOCATION_DESCRIPTION = (
    "where it sits in the original file: {page} or {start_seconds, end_seconds};"
    " null where the format has neither (text, Markdown, HTML, DOCX, spreadsheets)"
)


class ChunkRef(BaseModel):
    """Where a passage sits in its document: ordinal and character offsets [start, end)."""

    ordinal: int
    start: int
    end: int
    location: Location = Field(description=LOCATION_DESCRIPTION)


class Passage(BaseModel):
    """A retrieved passage: `score` is its cosine similarity, the value the threshold applies to;
    `rank_score` is what the mode ranked by (cosine, keyword rank, or fused RRF score)."""

    document_id: str
    title: str | None
    source: str | None
    text: str
    score: float
    rank_score: float
    rerank_score: float | None = Field(
        default=None, description="the reranker's score, where the passages were reranked"
    )
    chunk: ChunkRef
    location: Location = Field(description=LOCATION_DESCRIPTION)
    metadata: dict[str, Any]


class QueryResponse(BaseModel):
    """Grounded passages, or `grounded: false` with no results when nothing passed."""

    grounded: bool
    mode: Mode
    threshold: float
    best_score: float | None
    reranked: bool | None = Field(default=None, description=RERANKED_DESCRIPTION)
    embedder: str | None = Field(
        default=None,
        description="the embedder of the space that answered (it changes when a migration of"
        " the collection is activated, and is the new one for `space: shadow`)",
    )
    results: list[Passage]


class ContextRequest(RetrievalRequest):
    """A question and a token budget for prompt-ready context."""

    max_tokens: int = Field(default=1500, ge=16, le=100_000)


class CitationChunk(BaseModel):
    """The span a citation covers: first and last chunk ordinals and character offsets."""

    ordinals: list[int]
    start: int
    end: int
    location: Location = Field(description=LOCATION_DESCRIPTION)


class Citation(BaseModel):
    """What `[n]` in the context refers to."""

    n: int
    document_id: str
    title: str | None
    source: str | None
    score: float
    chunk: CitationChunk
    location: Location = Field(description=LOCATION_DESCRIPTION)


class ContextResponse(BaseModel):
    """Passages packed into the budget, each marked `[n]`; empty when nothing is relevant."""

    grounded: bool
    threshold: float
    best_score: float | None
    reranked: bool | None = Field(default=None, description=RERANKED_DESCRIPTION)
    embedder: str | None = Field(
        default=None,
        description="the embedder of the space that answered (it changes when a migration of"
        " the collection is activated, and is the new one for `space: shadow`)",
    )
    context: str
    tokens: int
    citations: list[Citation]
