"""Request and response bodies of the collections API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.validation import StorableText

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class CollectionCreate(BaseModel):
    """A new collection; unset chunking values get the embedder's defaults."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="1-64 of letters, digits, _ . -")
    embedder: str = Field(default="local", description="'local', 'hash' or 'openai:<model>'")
    chunk_tokens: int | None = Field(default=None, ge=16, le=8192)
    chunk_overlap: int | None = Field(default=None, ge=0, le=4096)
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    bulk_load: bool = Field(
        default=False,
        description="load without indexes or text search vectors; build them when done",
    )
    language: str = Field(
        default="english",
        pattern=r"^[a-z_]{1,63}$",
        description="PostgreSQL text search configuration for keyword search, e.g. 'simple'",
    )
    vector_storage: Literal["vector", "halfvec"] = Field(
        default="vector",
        description="`halfvec`: the HNSW index and the vectors searches compare in half"
        " precision (half the index's size and memory, recall within a point)",
    )


class CollectionUpdate(BaseModel):
    """Settings that can change without re-indexing (at least one; null resets an answer
    setting to the server's default)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    answer_model: str | None = Field(
        default=None, min_length=1, max_length=200, description="the chat model of answers"
    )
    answer_prompt: StorableText | None = Field(
        default=None,
        min_length=1,
        max_length=8000,
        description="the system prompt of answers; {no_context} stands for the sentence below",
    )
    answer_no_context: StorableText | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="the answer when nothing is relevant",
    )
    rerank: bool | None = Field(
        default=None,
        description="queries, contexts and answers rerank unless a request says otherwise"
        " (needs a reranker configured on the server)",
    )

    @model_validator(mode="after")
    def _something(self) -> CollectionUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one setting to change")
        for name in ("threshold", "rerank"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class BulkLoad(BaseModel):
    """Turns bulk-load mode on (defer indexes and text search) or off (build them now)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class BulkLoadOut(BaseModel):
    """The mode now; on leaving bulk-load mode, what finishing the load did and took."""

    bulk_load: bool
    index_build_seconds: float | None = Field(default=None, description="building the HNSW index")
    text_search_seconds: float | None = Field(
        default=None,
        description="computing the deferred text search vectors and building the GIN index",
    )
    text_vectors_computed: int | None = Field(
        default=None, description="chunks whose text search vector was deferred"
    )


class DocumentCounts(BaseModel):
    """Documents of a collection by status."""

    queued: int = 0
    processing: int = 0
    done: int = 0
    failed: int = 0


class CollectionOut(BaseModel):
    """A collection as the API shows it."""

    name: str
    embedder: str
    dimensions: int
    chunk_tokens: int
    chunk_overlap: int
    threshold: float
    language: str
    bulk_load: bool
    vector_storage: str = "vector"
    created_at: datetime
    answer_model: str | None = None
    answer_prompt: str | None = None
    answer_no_context: str | None = None
    rerank: bool = False


class IngestLimits(BaseModel):
    """What a request to add documents may hold (a 413 names the limit it hit)."""

    max_document_bytes: int = Field(description="GROUNDWIRE_MAX_DOCUMENT_BYTES: one text")
    max_body_bytes: int = Field(description="GROUNDWIRE_MAX_BODY_BYTES: one request body")
    max_metadata_bytes: int = Field(description="GROUNDWIRE_MAX_METADATA_BYTES: one metadata")
    max_documents_per_request: int


class StageWaiting(BaseModel):
    """A pipeline stage of one collection: `ingest` (parse and chunk; its documents are
    `queued`) or `embed` (its documents are `processing`), how many wait, the oldest's age."""

    stage: str
    documents: int
    oldest_age_seconds: float | None


class CollectionDetail(CollectionOut):
    """A collection with its document counts by status, its chunk count, its size on disk,
    what waits in each stage, and what a request to add documents to it may hold."""

    documents: DocumentCounts
    chunks: int
    limits: IngestLimits
    size_bytes: int = Field(
        description="its chunks' partition with its indexes, and its share of the documents"
        " table (by rows: an estimate)"
    )
    stages: list[StageWaiting]


class CollectionList(BaseModel):
    """All collections."""

    collections: list[CollectionOut]
