"""Posting documents again exactly as they are stored writes no row: no dead tuples, no text
written again. A change of metadata alone rewrites the row but not its stored text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.db import Database
from tests.support.api import ingest, wait_finished

BIG = "Tide tables for the harbour, kept by the lamp keeper. " * 400  # TOASTed: ~21 KB


def row_versions(db: Database, collection: str) -> dict[str, str]:
    """Each document's current tuple (xmin and ctid change whenever its row is written)."""
    with db.scope() as session:
        rows = session.execute(
            text(
                "SELECT d.external_id, d.xmin::text || '/' || d.ctid::text FROM documents d"
                " JOIN collections c ON c.id = d.collection_id WHERE c.name = :name"
            ),
            {"name": collection},
        )
        return {str(e): str(v) for e, v in rows}


def toast_bytes(db: Database) -> int:
    with db.scope() as session:
        return int(
            session.execute(
                text(
                    "SELECT pg_relation_size(reltoastrelid) FROM pg_class"
                    " WHERE oid = 'documents'::regclass"
                )
            ).scalar_one()
        )


def test_an_unchanged_repost_writes_nothing(
    api: Any, worker: Any, db: Database, make_collection: Any
) -> None:
    name = make_collection("hash")
    docs = [
        {"id": f"doc-{i}", "text": f"{i} {BIG}", "title": f"T{i}", "metadata": {"n": i},
         "access": ["team-a"] if i % 2 else None}
        for i in range(30)
    ]  # fmt: skip
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    before, toast_before = row_versions(db, name), toast_bytes(db)

    again = ingest(api, name, docs)
    assert {d["status"] for d in again["documents"]} == {"unchanged"}
    assert [d["version"] for d in again["documents"]] == [1] * 30
    assert row_versions(db, name) == before, "an unchanged document's row was written again"
    assert toast_bytes(db) == toast_before
    batch = api.get(f"/v1/batches/{again['batch_id']}").json()
    assert batch["total"] == 30 and batch["finished"]

    docs[0]["metadata"] = {"n": 0, "reviewed": True}
    changed = ingest(api, name, docs)
    assert [d["status"] for d in changed["documents"]].count("unchanged") == 30
    after = row_versions(db, name)
    assert after["doc-0"] != before["doc-0"]
    assert {k: v for k, v in after.items() if k != "doc-0"} == {
        k: v for k, v in before.items() if k != "doc-0"
    }
    assert toast_bytes(db) == toast_before, "the unchanged text was stored again"
    shown = api.get(f"/v1/collections/{name}/documents/doc-0").json()
    assert shown["metadata"] == {"n": 0, "reviewed": True} and shown["status"] == "done"
