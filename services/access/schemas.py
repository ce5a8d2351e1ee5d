"""Request and response bodies of the keys and workspaces APIs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.access.caller import Scope
from services.collections.schemas import NAME_PATTERN


def _storable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate, which is not valid Unicode") from None
    return value


# Text without control characters that PostgreSQL can store.
Label = Annotated[
    str,
    Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$"),
    AfterValidator(_storable),
]
# A principal names a reader: `group:hr`, `user:ana@example.org`; compared exactly.
Principal = Label
CollectionName = Annotated[str, Field(pattern=NAME_PATTERN)]


class KeyCreate(BaseModel):
    """A new key of the caller's workspace."""

    model_config = ConfigDict(extra="forbid")

    name: Label
    scopes: list[Scope] = Field(min_length=1, max_length=3)
    collections: list[CollectionName] | None = Field(
        default=None, max_length=1000, description="only these collections (default: all)"
    )
    expires_at: datetime | None = Field(default=None, description="ISO 8601 with a time zone")
    principals: list[Principal] | None = Field(
        default=None, max_length=1000, description="the principals this key reads as"
    )
    act_for_principals: bool = Field(
        default=False,
        description="requests may name the principals of the end user they serve",
    )
    query_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    ingest_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)


class KeyOut(BaseModel):
    """A key as listings show it: never its secret."""

    id: uuid.UUID
    name: str
    workspace: str
    prefix: str = Field(description="the start of the secret, to tell keys apart")
    scopes: list[Scope]
    collections: list[str] | None
    principals: list[str] | None
    act_for_principals: bool
    query_per_minute: int | None
    ingest_per_minute: int | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


class Me(BaseModel):
    """The caller as its key makes it: what the console shows and hides."""

    workspace: str
    key_name: str
    scopes: list[Scope]
    collections: list[str] | None
    principals: list[str]
    server_admin: bool


class KeyCreated(KeyOut):
    """A new key, with its secret: shown here once, and never again."""

    key: str


class KeyList(BaseModel):
    """The workspace's keys that are not revoked."""

    keys: list[KeyOut]


class WorkspaceCreate(BaseModel):
    """A new workspace."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="1-64 of letters, digits, _ . -")
    collection_quota: int | None = Field(default=None, ge=0, le=1_000_000)


class WorkspaceOut(BaseModel):
    """A workspace."""

    name: str
    collection_quota: int | None
    created_at: datetime


class WorkspaceList(BaseModel):
    """Every workspace."""

    workspaces: list[WorkspaceOut]
