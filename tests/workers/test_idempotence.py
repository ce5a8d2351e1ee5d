"""Running a document's task twice, or concurrently, leaves exactly one set of chunks; a
document whose task was never sent is found and sent again by the sweeper."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select, text, update

from services.db import session_scope
from services.models import Chunk, Collection, Document
from tests.helpers import wait_status
from workers import pipeline, sweeper


def add_document(collection: str, external_id: str, content: str) -> tuple[int, int]:
    """Commits a queued document without enqueueing it, as a crash before enqueue would."""
    with session_scope() as session:
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


def chunk_rows(document_id: int) -> list[tuple[int, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(Chunk.doc_version, Chunk.ordinal)
            .where(Chunk.document_id == document_id)
            .order_by(Chunk.ordinal)
        )
        return [(int(v), int(o)) for v, o in rows]


TEXT = "\n\n".join(f"Section {i} is about lighthouses and their keepers." for i in range(12))


def test_running_twice_changes_nothing(service_env: Any, make_collection: Any) -> None:
    name = make_collection("hash", chunk_tokens=16, chunk_overlap=0)
    doc_id, version = add_document(name, "twice", TEXT)
    first = pipeline.process_now([(doc_id, version)])
    stored = chunk_rows(doc_id)
    assert first.done == 1 and len(stored) > 1
    second = pipeline.process_now([(doc_id, version)])
    assert second.done == 0 and second.failed == 0
    assert chunk_rows(doc_id) == stored == [(1, i) for i in range(len(stored))]


def test_concurrent_runs_write_one_set(service_env: Any, make_collection: Any) -> None:
    name = make_collection("hash", chunk_tokens=16, chunk_overlap=0)
    doc_id, version = add_document(name, "racing", TEXT)
    outcomes: list[int] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        outcomes.append(pipeline.process_now([(doc_id, version)]).done)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(outcomes) == 1, outcomes
    rows = chunk_rows(doc_id)
    assert rows == [(1, i) for i in range(len(rows))] and rows


def test_stale_version_is_fenced_out(service_env: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    doc_id, version = add_document(name, "moving", TEXT)
    with session_scope() as session:
        session.execute(
            update(Document).where(Document.id == doc_id).values(version=Document.version + 1)
        )
    assert pipeline.process_now([(doc_id, version)]).done == 0
    assert chunk_rows(doc_id) == []


@pytest.mark.usefixtures("worker")
def test_sweeper_resends_a_document_never_enqueued(api: Any, make_collection: Any) -> None:
    name = make_collection("hash")
    doc_id, version = add_document(name, "orphan", TEXT)
    with session_scope() as session:
        recent = [(i, v) for i, v, _ in sweeper.stale_documents(session, 120, 900)]
        session.rollback()
    assert (doc_id, version) not in recent, "a fresh document is left to its own task"
    with session_scope() as session:
        session.execute(
            text("UPDATE documents SET enqueued_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": doc_id},
        )
    assert sweeper.sweep_once() >= 1
    done = wait_status(api, name, "orphan", "done", timeout=60)
    assert done["chunks"] >= 1
    with session_scope() as session:
        again = [(i, v) for i, v, _ in sweeper.stale_documents(session, 0, 0)]
        session.rollback()
    assert (doc_id, version) not in again, "a done document is never sent again"


def test_a_busy_worker_keeps_its_lease_and_a_dead_one_loses_it(
    service_env: Any, make_collection: Any
) -> None:
    import time
    import uuid

    from workers.claims import claim_documents
    from workers.lease import LeaseKeeper
    from workers.work import DocumentWork

    name = make_collection("hash")
    doc_id, version = add_document(name, "leased", TEXT)
    owner = uuid.uuid4()
    with session_scope() as session:
        (claimed,) = claim_documents(session, [(doc_id, version)], owner, lease_s=1.5)
    work = DocumentWork(doc_id, version, owner, claimed.collection_id, "hash", 256, "english", ())

    def stale() -> bool:
        with session_scope() as session:
            found = [(i, v) for i, v, _ in sweeper.stale_documents(session, 120, 1.5)]
            session.rollback()  # look, do not push the lease forward
        return (doc_id, version) in found

    with LeaseKeeper([work], lease_s=1.5):
        time.sleep(2.5)
        assert not stale(), "renewed while the worker is busy"
    time.sleep(2.0)
    assert stale(), "a lease nobody renews runs out"
