"""HTTP routes for API keys (a workspace's admins) and workspaces (the server admin)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.access import service
from services.access.schemas import (
    KeyCreate,
    KeyCreated,
    KeyList,
    Me,
    WorkspaceCreate,
    WorkspaceList,
    WorkspaceOut,
)
from services.api.deps import Admin, CallerDep, ServerAdmin, SessionDep
from services.api.errors import error_responses

router = APIRouter(
    tags=["access"], responses=error_responses(400, 401, 403, 404, 409, 413, 422, 503)
)


@router.get("/v1/me", response_model=Me)
def who_am_i(caller: CallerDep) -> Me:
    """The calling key: its workspace, scopes, collections and principals."""
    return Me(
        workspace=caller.workspace,
        key_name=caller.key_name,
        scopes=sorted(caller.scopes),
        collections=sorted(caller.collections) if caller.collections is not None else None,
        principals=list(caller.principals),
        server_admin=caller.server_admin,
    )


@router.post("/v1/keys", status_code=201, response_model=KeyCreated)
def create_key(caller: Admin, body: KeyCreate, session: SessionDep) -> KeyCreated:
    """Creates a key of the caller's workspace; its secret is in this answer and nowhere else."""
    created = service.create_key(session, caller, body)
    session.commit()
    return created


@router.get("/v1/keys", response_model=KeyList)
def list_keys(caller: Admin, session: SessionDep) -> KeyList:
    """Lists the workspace's keys (never their secrets)."""
    return KeyList(keys=service.list_keys(session, caller))


@router.delete("/v1/keys/{key_id}", status_code=204, response_class=Response)
def revoke_key(caller: Admin, key_id: uuid.UUID, session: SessionDep) -> Response:
    """Revokes a key: its next request is refused."""
    service.revoke_key(session, caller, key_id)
    session.commit()
    return Response(status_code=204)


@router.post("/v1/workspaces", status_code=201, response_model=WorkspaceOut)
def create_workspace(
    caller: ServerAdmin, body: WorkspaceCreate, session: SessionDep
) -> WorkspaceOut:
    """Creates a workspace (server admin only)."""
    workspace = service.create_workspace(session, body)
    session.commit()
    return WorkspaceOut.model_validate(workspace, from_attributes=True)


@router.get("/v1/workspaces", response_model=WorkspaceList)
def list_workspaces(caller: ServerAdmin, session: SessionDep) -> WorkspaceList:
    """Lists every workspace (server admin only)."""
    return WorkspaceList(
        workspaces=[
            WorkspaceOut.model_validate(w, from_attributes=True)
            for w in service.list_workspaces(session)
        ]
    )
