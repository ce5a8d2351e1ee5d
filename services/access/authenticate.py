"""Turning a request's bearer token into its caller, in one statement for a workspace key."""

from __future__ import annotations

import hmac

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.access import secrets
from services.access.caller import Caller, Scope, effective
from services.config import Settings
from services.models import Workspace

DEFAULT_WORKSPACE = "default"
WORKSPACE_HEADER = "X-Groundwire-Workspace"

# Finds the key by its digest and, at most once a minute, records its use in the same round
# trip (a query pays no write for it).
_FIND_KEY = text(
    """
    WITH found AS (
        SELECT k.*, w.name AS workspace FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
        WHERE k.secret_sha256 = :digest
    ), touched AS (
        UPDATE api_keys SET last_used_at = now() FROM found
        WHERE api_keys.id = found.id AND found.revoked_at IS NULL
          AND (found.expires_at IS NULL OR found.expires_at > now())
          AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '60 seconds')
        RETURNING 1
    )
    SELECT found.*, found.expires_at <= now() AS expired, (SELECT count(*) FROM touched) AS touched
    FROM found
    """
)


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
    row = session.execute(_FIND_KEY, {"digest": digest}).mappings().first()
    if row is None or not hmac.compare_digest(bytes(row["secret_sha256"]), digest):
        raise Unauthenticated("invalid API key")
    if row["revoked_at"] is not None:
        raise Unauthenticated("this API key was revoked")
    if row["expired"]:
        raise Unauthenticated("this API key has expired")
    if row["touched"]:
        session.commit()  # its use is recorded, whatever the request does next
    return Caller(
        workspace_id=int(row["workspace_id"]),
        workspace=str(row["workspace"]),
        scopes=effective(row["scopes"]),
        key_id=row["id"],
        key_name=str(row["name"]),
        collections=frozenset(row["collections"]) if row["collections"] is not None else None,
        principals=tuple(row["principals"] or ()),
        act_for_principals=bool(row["act_for_principals"]),
        query_per_minute=row["query_per_minute"],
        ingest_per_minute=row["ingest_per_minute"],
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
