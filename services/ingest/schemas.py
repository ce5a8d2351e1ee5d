"""Request and response bodies of the ingestion API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.access.schemas import Principal
from services.api.validation import StorableText
from services.documents import Accepted
from services.statuses import Acceptance, DocumentStatus, FailureClass

MAX_DOCUMENTS_PER_REQUEST = 1000


class DocumentIn(BaseModel):
    """One document to ingest; `id` defaults to a generated one."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=512)
    text: str
    content_type: Literal["text/plain", "text/markdown", "text/html"] = Field(
        default="text/plain", description="how workers parse `text` before chunking"
    )
    title: str | None = Field(default=None, max_length=2000)
    source: str | None = Field(default=None, max_length=4000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    access: list[Principal] | None = Field(
        default=None,
        max_length=1000,
        description="principals who may read it, e.g. ['group:hr']; absent: every reader",
    )


class IngestRequest(BaseModel):
    """A batch of 1 to 1,000 documents."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS_PER_REQUEST)


class AcceptedDocument(BaseModel):
    """A document's id, what happened to it (`queued` or `unchanged`) and its version."""

    id: str
    status: Acceptance
    version: int


class IngestResponse(BaseModel):
    """The batch to poll and each document's fate."""

    batch_id: uuid.UUID
    documents: list[AcceptedDocument]

    @classmethod
    def of(cls, accepted: Accepted) -> IngestResponse:
        """The answer to a request whose documents were `accepted`."""
        return cls(
            batch_id=accepted.batch_id,
            documents=[
                AcceptedDocument(id=d.id, status=d.status, version=d.version)
                for d in accepted.documents
            ],
        )


class DocumentOut(BaseModel):
    """A document's processing state."""

    id: str
    status: DocumentStatus
    version: int
    indexed_version: int | None
    chunks: int
    tokens: int
    attempts: int
    embedded_chunks: int
    cached_chunks: int
    embedded_tokens: int
    error: str | None
    error_class: FailureClass | None = Field(
        description="why it failed: parse, embedding, gave_up (transient errors outlasted the"
        " retries) or internal"
    )
    title: str | None
    source: str | None
    content_type: str
    metadata: dict[str, Any]
    access: list[str] | None
    created_at: datetime
    accepted_at: datetime
    started_at: datetime | None
    embedded_at: datetime | None
    finished_at: datetime | None


class BatchOut(BaseModel):
    """Progress of one ingestion request."""

    batch_id: uuid.UUID
    collection: str
    total: int
    queued: int
    processing: int
    done: int
    failed: int
    unchanged: int
    deleted: int
    finished: bool
    embedded_chunks: int
    cached_chunks: int


class BatchList(BaseModel):
    """A collection's most recent batches, newest first, with their progress."""

    batches: list[BatchOut]


class DocumentList(BaseModel):
    """A page of documents in order of their ids; pass `next` as `after` for the next page."""

    documents: list[DocumentOut]
    next: str | None


class RetryRequest(BaseModel):
    """Which failed documents to replay: the listed ids, or every failed one when omitted."""

    model_config = ConfigDict(extra="forbid")

    ids: list[StorableText] | None = Field(default=None, min_length=1, max_length=1000)


class RetryResponse(BaseModel):
    """The documents queued again."""

    retried: int
    documents: list[AcceptedDocument]
