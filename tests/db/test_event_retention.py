"""The sweeper deletes document events past their retention, and keeps the rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.db import Database
from workers.sweeper import prune_events


def test_events_past_their_retention_are_deleted(make_collection: Any, db: Database) -> None:
    name = make_collection()
    with db.scope() as session:
        collection_id = session.execute(
            text("SELECT id FROM collections WHERE name = :name"), {"name": name}
        ).scalar_one()
        for age in ("8 days", "1 hour"):
            session.execute(
                text(
                    "INSERT INTO document_events"
                    " (at, collection_id, document_id, external_id, version, status)"
                    " VALUES (now() - CAST(:age AS interval), :c, 1, :label, 1, 'done')"
                ),
                {"age": age, "label": age, "c": collection_id},
            )
    with db.scope() as session:
        prune_events(session, retention_s=7 * 24 * 3600)
    with db.scope() as session:
        kept = (
            session.execute(
                text("SELECT external_id FROM document_events WHERE collection_id = :c"),
                {"c": collection_id},
            )
            .scalars()
            .all()
        )
    assert kept == ["1 hour"]
