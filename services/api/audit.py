"""The audit trail: every state-changing request of an authenticated caller, as it ended.

Recorded after the response, in a transaction of its own, so refusals and failures are in
it too: who (key id and name, workspace), what (method, route, path), which collection and
document ids, the status and outcome, and when. Requests without a valid key never reach the
data and are not recorded (a flood of them must not fill the table); the API log has them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import anyio
from sqlalchemy import insert
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.access.caller import Caller
from services.db import Database
from services.models import AuditEntry

log = logging.getLogger(__name__)

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Requests that change nothing although they are POSTs.
READS = ("/query", "/context")


def _record(database: Database, entry: dict[str, Any]) -> None:
    try:
        with database.scope() as session:
            session.execute(insert(AuditEntry).values(**entry))
    except Exception as error:  # the answer is given; the log keeps what the table could not
        log.error("audit entry not recorded (%s): %s", error, entry)


class AuditTrail:
    """ASGI middleware that records state-changing requests once they are answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in CHANGING
            or not path.startswith("/v1/")
            or path.endswith(READS)
        ):
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            state = scope.get("state") or {}
            caller = state.get("caller")
            if isinstance(caller, Caller):
                route = scope.get("route")
                params = scope.get("path_params") or {}
                documents = state.get("audit_documents")
                if documents is None and "document_id" in params:
                    documents = [str(params["document_id"])]
                entry = {
                    "workspace_id": caller.workspace_id,
                    "key_id": caller.key_id,
                    "key_name": caller.key_name,
                    "method": scope["method"],
                    "path": path,
                    "action": f"{scope['method']} {_template(getattr(route, 'path', path))}",
                    "collection": params.get("name"),
                    "document_ids": documents,
                    "status": status,
                    "outcome": "ok" if status < 400 else "refused" if status < 500 else "error",
                }
                database = scope["app"].state.runtime.database
                await anyio.to_thread.run_sync(_record, database, entry)


_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def _template(path: str) -> str:
    """A route's path as its parameters name it (`{document_id}`, not `{document_id:path}`)."""
    return _CONVERTER.sub(r"{\1}", path)
