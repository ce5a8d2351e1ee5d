"""Running a document's task twice, or concurrently, leaves exactly one set of chunks; a
document whose task was never sent is found and sent again by the sweeper."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, text, update

from services.db import Database
from services.models import Chunk, Collection, Document
from services.runtime import Runtime
from tests.support.api import wait_status
from tests.support.waiting import wait_for
from workers import pipeline, sweeper
from workers.claims import claim_documents
from workers.lease import LeaseKeeper
from workers.work import DocumentWork


def add_document(db: Database, collection: str, external_id: str, content: str) -> tuple[int, int]:
    """Commits a queued document without enqueueing it, as a crash before enqueue would."""
    with db.scope() as session:
        coll = session.scalar(select(Collection).where(Collection.name == collection))
        assert coll is not None
        doc = Document(
            collection_id=coll.id,
            external_id=external_id,
            content=content,
            content_hash="test",
            metadata_={},
        )
        session.add(doc)
        session.flush()
        return doc.id, doc.version


def chunk_rows(db: Database, document_id: int) -> list[tuple[int, int]]:
    with db.scope() as session:
        rows = session.execute(
            select(Chunk.doc_version, Chunk.ordinal)
            .where(Chunk.document_id == document_id)
            .order_by(Chunk.ordinal)
        )
        return [(int(v), int(o)) for v, o in rows]


TEXT = "\n\n".join(f"Section {i} is about lighthouses and their keepers." for i in range(12))


def test_running_twice_changes_nothing(
    runtime: Runtime, db: Database, make_collection: Any
) -> None:
    name = make_collection("hash", chunk_tokens=16, chunk_overlap=0)
    doc_id, version = add_document(db, name, "twice", TEXT)
    first = pipeline.process_now(runtime, [(doc_id, version)])
    stored = chunk_rows(db, doc_id)
    assert first.done == 1 and len(stored) > 1
    second = pipeline.process_now(runtime, [(doc_id, version)])
    assert second.done == 0 and second.failed == 0
    assert chunk_rows(db, doc_id) == stored == [(1, i) for i in range(len(stored))]


def test_concurrent_runs_write_one_set(
    runtime: Runtime, db: Database, make_collection: Any
) -> None:
    name = make_collection("hash", chunk_tokens=16, chunk_overlap=0)
    doc_id, version = add_document(db, name, "racing", TEXT)
    outcomes: list[int] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        outcomes.append(pipeline.process_now(runtime, [(doc_id, version)]).done)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(outcomes) == 1, outcomes
    rows = chunk_rows(db, doc_id)
    assert rows == [(1, i) for i in range(len(rows))] and rows


def test_stale_version_is_fenced_out(runtime: Runtime, db: Database, make_collection: Any) -> None:
    name = make_collection("hash")
    doc_id, version = add_document(db, name, "moving", TEXT)
    with db.scope() as session:
        session.execute(
            update(Document).where(Document.id == doc_id).values(version=Document.version + 1)
        )
    assert pipeline.process_now(runtime, [(doc_id, version)]).done == 0
    assert chunk_rows(db, doc_id) == []


@pytest.mark.usefixtures("worker")
def test_sweeper_resends_a_document_never_enqueued(
    api: Any, make_collection: Any, runtime: Runtime, db: Database
) -> None:
    name = make_collection("hash")
    doc_id, version = add_document(db, name, "orphan", TEXT)
    with db.scope() as session:
        recent = [(i, v) for i, v, _ in sweeper.stale_documents(session, 120, 900)]
        session.rollback()
    assert (doc_id, version) not in recent, "a fresh document is left to its own task"
    with db.scope() as session:
        session.execute(
            text("UPDATE documents SET enqueued_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": doc_id},
        )
    assert sweeper.sweep_once(runtime) >= 1
    done = wait_status(api, name, "orphan", "done", timeout=60)
    assert done["chunks"] >= 1
    with db.scope() as session:
        again = [(i, v) for i, v, _ in sweeper.stale_documents(session, 0, 0)]
        session.rollback()
    assert (doc_id, version) not in again, "a done document is never sent again"


@pytest.mark.slow  # waits out real leases
def test_a_busy_worker_keeps_its_lease_and_a_dead_one_loses_it(
    db: Database, make_collection: Any
) -> None:
    name = make_collection("hash")
    doc_id, version = add_document(db, name, "leased", TEXT)
    owner = uuid.uuid4()
    lease_s = 3.0
    with db.scope() as session:
        (claimed,) = claim_documents(session, [(doc_id, version)], owner, lease_s=lease_s)
    work = DocumentWork(doc_id, version, owner, claimed.collection_id, "hash", 256, "english", ())

    def expiry() -> datetime:
        with db.scope() as session:
            found = session.scalar(select(Document.lease_expires_at).where(Document.id == doc_id))
        assert found is not None
        return found

    def stale() -> bool:
        with db.scope() as session:
            found = [(i, v) for i, v, _ in sweeper.stale_documents(session, 120, lease_s)]
            session.rollback()  # look, do not push the lease forward
        return (doc_id, version) in found

    def database_now() -> datetime:
        with db.scope() as session:
            now: datetime = session.execute(text("SELECT now()")).scalar_one()
        return now

    claimed_until = expiry()
    with LeaseKeeper(db, [work], lease_s=lease_s):
        # Past the lease the claim gave, the keeper has moved it forward: the sweeper leaves
        # the document alone while the worker is busy.
        wait_for(lambda: database_now() > claimed_until, timeout=30)
        assert expiry() > claimed_until, "the lease was renewed"
        assert not stale(), "renewed while the worker is busy"
    wait_for(stale, timeout=30)  # a lease nobody renews runs out
