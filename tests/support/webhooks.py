"""Test hygiene for webhooks: tests that make webhooks to addresses outside this machine
(public addresses, to pass the URL check) delete them when done, so that no delivery tick of
a later test ever sends anything there."""

from __future__ import annotations

from sqlalchemy import text

from services.db import Database

LOOPBACK = "http://127.0.0.1:%"


def drop_outside_webhooks(db: Database, workspace: str | None = None) -> int:
    """Deletes the webhooks (and their deliveries) that point off this machine, of one
    workspace or of all; returns how many."""
    query = "DELETE FROM webhooks WHERE url NOT LIKE :loopback"
    params = {"loopback": LOOPBACK}
    if workspace is not None:
        query += " AND workspace_id = (SELECT id FROM workspaces WHERE name = :workspace)"
        params["workspace"] = workspace
    with db.scope() as session:
        return int(session.execute(text(query), params).rowcount or 0)  # type: ignore[attr-defined]
