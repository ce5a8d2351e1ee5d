"""Who is calling: resolved once per request from its key, and asked by every route and
service what it may do. Authorisation is a property of this object, never re-derived."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """What a key may do: `read` (query, context, list, get, batches), `write` (read, and
    ingest, delete, retry), `admin` (write, and collections, keys and what later comes)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


_IMPLIED = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.WRITE: frozenset({Scope.READ, Scope.WRITE}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.WRITE, Scope.ADMIN}),
}


def effective(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[Scope]:
    """Returns the scopes granted, with those each one implies."""
    granted: set[Scope] = set()
    for scope in scopes:
        granted |= _IMPLIED[Scope(scope)]
    return frozenset(granted)


class AccessDenied(Exception):
    """The caller may not do this (a 403: it reveals nothing of the data)."""


@dataclass(frozen=True)
class Caller:
    """A request's caller: its workspace, scopes, collections and principals."""

    workspace_id: int
    workspace: str
    scopes: frozenset[Scope]
    key_id: uuid.UUID | None = None  # None: the server admin key
    key_name: str = "server admin"
    collections: frozenset[str] | None = None  # None: every collection of the workspace
    principals: tuple[str, ...] = ()
    act_for_principals: bool = False
    server_admin: bool = False
    query_per_minute: int | None = None
    ingest_per_minute: int | None = None

    def has(self, scope: Scope) -> bool:
        """Whether the caller holds `scope` (directly or through a wider one)."""
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        """Raises AccessDenied unless the caller holds `scope`."""
        if not self.has(scope):
            raise AccessDenied(f"this key lacks the '{scope}' scope")

    def sees_collection(self, name: str) -> bool:
        """Whether the key's collection list (if it has one) includes `name`."""
        return self.collections is None or name in self.collections

    def reader_principals(self, requested: list[str] | None) -> tuple[str, ...]:
        """The principals whose documents a retrieval may return.

        A key bound to fixed principals reads as them; a key trusted to act for principals
        reads as the ones the request names (none: only documents without an access list).
        """
        if requested is None:
            return self.principals
        if not (self.act_for_principals or self.server_admin):
            raise AccessDenied("this key may not act for principals")
        return tuple(requested)
