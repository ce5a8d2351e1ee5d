"""Request and response bodies of the embedding-space migrations API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.validation import StorableText, json_problem

MAX_COMPARISON_BYTES = 256 * 1024

MigrationStatus = Literal["building", "ready", "active", "rolled_back", "failed"]
ThresholdMethod = Literal["query_log", "eval", "default"]


class MigrationCreate(BaseModel):
    """The space to build: a new embedder, new chunking, or both (at least one field)."""

    model_config = ConfigDict(extra="forbid")

    embedder: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="'local', 'hash[:dims]' or 'openai:<model>'; unset: the collection's",
    )
    chunk_tokens: int | None = Field(default=None, ge=16, le=8192)
    chunk_overlap: int | None = Field(default=None, ge=0, le=4096)

    @model_validator(mode="after")
    def _something(self) -> MigrationCreate:
        if not self.model_fields_set:
            raise ValueError("give at least one of embedder, chunk_tokens, chunk_overlap")
        return self


class SpaceSettings(BaseModel):
    """An embedding space: its embedder, dimensions and chunking."""

    embedder: str
    dimensions: int
    chunk_tokens: int
    chunk_overlap: int


class Threshold(BaseModel):
    """The relevance threshold before and after, and how the new one was found (null until
    the build is done)."""

    old: float
    new: float | None
    method: ThresholdMethod | None
    detail: dict[str, Any] | None = None


class MigrationOut(BaseModel):
    """A migration, with its progress over the collection as it is now."""

    id: int
    collection: str
    status: MigrationStatus
    source: SpaceSettings = Field(description="the space the collection had when it began")
    target: SpaceSettings
    total: int = Field(description="documents of the collection done (the build's scope)")
    done: int = Field(description="of those, built in the new space at their current version")
    failed: int = Field(
        description="of those, documents the new space could not build (the embedder refused"
        " them): a migration with any cannot be activated"
    )
    embedded: int = Field(description="chunks embedded for the new space")
    cached: int = Field(description="chunks whose vectors the new space's cache already had")
    tokens: int = Field(description="tokens embedded for the new space")
    eta_seconds: float | None = Field(description="at the rate so far; null when unknown")
    threshold: Threshold
    comparison: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    ready_at: datetime | None = None
    activated_at: datetime | None = None
    rolled_back_at: datetime | None = None
    ended_at: datetime | None = None
    retained_until: datetime | None = Field(
        default=None, description="when the space not in use is dropped (rollback until then)"
    )


class MigrationList(BaseModel):
    """A collection's migrations, newest first."""

    migrations: list[MigrationOut]


class Comparison(BaseModel):
    """What `groundwire eval --space shadow` measured, recorded on the migration; a
    `calibrated_threshold` (from labelled data) becomes the new space's threshold."""

    model_config = ConfigDict(extra="allow")

    data: StorableText | None = Field(
        default=None, max_length=500, description="the evaluation data"
    )
    calibrated_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _storable(self) -> Comparison:
        recorded = self.model_dump()
        problem = json_problem(recorded)
        if problem:
            raise ValueError(f"the comparison {problem}")
        if len(json.dumps(recorded)) > MAX_COMPARISON_BYTES:
            raise ValueError(f"the comparison is over {MAX_COMPARISON_BYTES} bytes")
        return self
