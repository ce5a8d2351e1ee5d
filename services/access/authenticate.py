"""Turning a request's bearer token into its caller, in one statement for a workspace key."""

from __future__ import annotations

import hmac

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.access import secrets
from services.access.caller import Caller, Scope, effective
from services.config import Settings
from services.db import driver_connection
from services.models import Workspace

DEFAULT_WORKSPACE = "default"
WORKSPACE_HEADER = "X-Groundwire-Workspace"

# Finds the key by its digest, in one round trip; its use is recorded at most once a minute,
# by a second statement (a query pays no write for it).
_FIND_KEY = (
    "SELECT k.id, k.workspace_id, w.name, k.name, k.secret_sha256, k.scopes, k.collections,"
    " k.principals, k.act_for_principals, k.query_per_minute, k.ingest_per_minute,"
    " k.revoked_at IS NOT NULL, coalesce(k.expires_at <= now(), false),"
    " k.last_used_at IS NULL OR k.last_used_at < now() - interval '60 seconds'"
    " FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.secret_sha256 = %s"
)
_TOUCH_KEY = "UPDATE api_keys SET last_used_at = now() WHERE id = %s"


class Unauthenticated(Exception):
    """No usable key: why, for the 401's message and its WWW-Authenticate challenge."""

    def __init__(self, reason: str, error: str = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class UnknownWorkspace(Exception):
    """The server admin named a workspace that does not exist."""


def bearer_token(authorization: str | None) -> str:
    """Returns the token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send the API key as 'Authorization: Bearer <key>'", "invalid_request"
        )
    return token.strip()


def authenticate(
    session: Session, settings: Settings, authorization: str | None, workspace: str | None
) -> Caller:
    """Returns the caller a request's headers name, or raises Unauthenticated."""
    token = bearer_token(authorization)
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    if admin and secrets.same(token, admin):
        return _server_admin(session, workspace or DEFAULT_WORKSPACE)
    if not token.startswith(secrets.KEY_PREFIX):
        raise Unauthenticated("invalid API key")
    digest = secrets.digest(token)
    conn = driver_connection(session)
    row = conn.execute(_FIND_KEY, [digest]).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[4]), digest):
        raise Unauthenticated("invalid API key")
    (key_id, workspace_id, workspace_name, name, _, scopes, collections, principals,
     act_for, query_limit, ingest_limit, revoked, expired, stale) = row  # fmt: skip
    if revoked:
        raise Unauthenticated("this API key was revoked")
    if expired:
        raise Unauthenticated("this API key has expired")
    if stale:
        conn.execute(_TOUCH_KEY, [key_id])
        session.commit()  # its use is recorded, whatever the request does next
    return Caller(
        workspace_id=int(workspace_id),
        workspace=str(workspace_name),
        scopes=effective(scopes),
        key_id=key_id,
        key_name=str(name),
        collections=frozenset(collections) if collections is not None else None,
        principals=tuple(principals or ()),
        act_for_principals=bool(act_for),
        query_per_minute=query_limit,
        ingest_per_minute=ingest_limit,
    )


def _server_admin(session: Session, name: str) -> Caller:
    workspace = session.scalar(select(Workspace).where(Workspace.name == name))
    if workspace is None and name == DEFAULT_WORKSPACE:  # always there for the server admin
        session.execute(insert(Workspace).values(name=name).on_conflict_do_nothing())
        session.commit()
        workspace = session.scalar(select(Workspace).where(Workspace.name == name))
    if workspace is None:
        raise UnknownWorkspace(f"no workspace named {name!r}")
    return Caller(
        workspace_id=workspace.id,
        workspace=workspace.name,
        scopes=frozenset(Scope),
        server_admin=True,
        act_for_principals=True,
    )
