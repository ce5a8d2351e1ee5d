"""Request and response bodies of the query API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class QueryRequest(BaseModel):
    """A question; `min_score` overrides the collection's relevance threshold."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=8000)
    k: int = Field(default=5, ge=1, le=100)
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)


class ChunkRef(BaseModel):
    """Where a passage sits in its document: ordinal and character offsets [start, end)."""

    ordinal: int
    start: int
    end: int


class Passage(BaseModel):
    """A retrieved passage with its cosine similarity score and citation."""

    document_id: str
    title: str | None
    source: str | None
    text: str
    score: float
    chunk: ChunkRef
    metadata: dict[str, Any]


class QueryResponse(BaseModel):
    """Grounded passages, or `grounded: false` with no results when nothing passed."""

    grounded: bool
    threshold: float
    best_score: float | None
    results: list[Passage]
