"""Creating, listing and revoking keys, and creating workspaces. Never commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.access import secrets
from services.access.caller import AccessDenied, Caller, Scope
from services.access.schemas import KeyCreate, KeyCreated, KeyOut, WorkspaceCreate
from services.api.errors import ApiError
from services.models import ApiKey, Workspace


def _out(key: ApiKey, workspace: str) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        workspace=workspace,
        prefix=key.prefix,
        scopes=[Scope(s) for s in sorted(key.scopes)],
        collections=key.collections,
        principals=key.principals,
        act_for_principals=key.act_for_principals,
        query_per_minute=key.query_per_minute,
        ingest_per_minute=key.ingest_per_minute,
        expires_at=key.expires_at,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


def create_key(session: Session, caller: Caller, body: KeyCreate) -> KeyCreated:
    """Creates a key in the caller's workspace that can do no more than the caller."""
    collections = body.collections
    if caller.collections is not None:
        if collections is None:
            collections = sorted(caller.collections)
        elif not set(collections) <= caller.collections:
            raise AccessDenied("a key cannot reach collections its creator cannot")
    if not (caller.act_for_principals or caller.server_admin):
        if body.act_for_principals:
            raise AccessDenied("a key cannot act for principals when its creator cannot")
        if not set(body.principals or ()) <= set(caller.principals):
            raise AccessDenied("a key cannot read as principals its creator cannot")
    if body.expires_at is not None:
        if body.expires_at.tzinfo is None:
            raise ApiError(422, "invalid_request", "expires_at needs a time zone")
        if body.expires_at <= datetime.now(UTC):
            raise ApiError(422, "invalid_request", "expires_at is in the past")
    secret = secrets.new_secret()
    key = ApiKey(
        id=uuid.uuid4(),
        workspace_id=caller.workspace_id,
        name=body.name,
        prefix=secrets.shown_prefix(secret),
        secret_sha256=secrets.digest(secret),
        scopes=sorted({str(s) for s in body.scopes}),
        collections=sorted(set(collections)) if collections is not None else None,
        principals=sorted(set(body.principals)) if body.principals is not None else None,
        act_for_principals=body.act_for_principals,
        query_per_minute=body.query_per_minute,
        ingest_per_minute=body.ingest_per_minute,
        expires_at=body.expires_at,
    )
    session.add(key)
    session.flush()
    session.refresh(key)
    return KeyCreated(**_out(key, caller.workspace).model_dump(), key=secret)


def _managed(caller: Caller) -> list[ColumnElement[bool]]:
    """The keys a caller manages: its workspace's, and for a key limited to collections,
    only keys limited to some of those."""
    conditions = [ApiKey.workspace_id == caller.workspace_id, ApiKey.revoked_at.is_(None)]
    if caller.collections is not None:
        conditions.append(ApiKey.collections.contained_by(sorted(caller.collections)))
    return conditions


def list_keys(session: Session, caller: Caller) -> list[KeyOut]:
    """Returns the keys the caller manages that are not revoked, oldest first."""
    rows = session.scalars(
        select(ApiKey).where(*_managed(caller)).order_by(ApiKey.created_at, ApiKey.id)
    )
    return [_out(key, caller.workspace) for key in rows]


def revoke_key(session: Session, caller: Caller, key_id: uuid.UUID) -> None:
    """Revokes a key the caller manages, at once; raises a 404 ApiError for any other id."""
    revoked = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, *_managed(caller))
        .values(revoked_at=func.now())
        .returning(ApiKey.id)
    ).first()
    if revoked is None:
        raise ApiError(404, "key_not_found", f"no key {key_id}")


def create_workspace(session: Session, body: WorkspaceCreate) -> Workspace:
    """Creates a workspace; raises a 409 ApiError when the name is taken."""
    workspace = Workspace(name=body.name, collection_quota=body.collection_quota)
    session.add(workspace)
    try:
        session.flush()
    except IntegrityError as error:
        raise ApiError(409, "conflict", f"workspace {body.name!r} already exists") from error
    session.refresh(workspace)
    return workspace


def list_workspaces(session: Session) -> list[Workspace]:
    """Returns every workspace, by name."""
    return list(session.scalars(select(Workspace).order_by(Workspace.name)))
