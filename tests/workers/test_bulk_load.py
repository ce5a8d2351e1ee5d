"""Bulk-load mode: load without indexes or text search vectors, then build them once; queries
work throughout, and a chunk written while the mode is left is never left without its vector."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from services.db import Database, libpq_url
from services.vectors import hnsw_index_name, text_index_name
from tests.support.api import ingest, query, wait_finished
from tests.support.waiting import wait_for

pytestmark = pytest.mark.usefixtures("worker")


def collection_id(db: Database, name: str) -> int:
    with db.scope() as session:
        return int(
            session.execute(
                text("SELECT id FROM collections WHERE name = :n"), {"n": name}
            ).scalar_one()
        )


def indexes(db: Database, name: str) -> set[str]:
    cid = collection_id(db, name)
    with db.scope() as session:
        found = session.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexname IN (:v, :t)"),
            {"v": hnsw_index_name(cid), "t": text_index_name(cid)},
        ).scalars()
        return {"vector" if n == hnsw_index_name(cid) else "text" for n in found}


def chunks_without_text_vector(db: Database, name: str) -> tuple[int, int]:
    with db.scope() as session:
        missing, total = session.execute(
            text("SELECT count(*) FILTER (WHERE tsv IS NULL), count(*) FROM chunks"
                 " WHERE collection_id = :c"),
            {"c": collection_id(db, name)},
        ).one()  # fmt: skip
        return int(missing), int(total)


def test_bulk_load_then_build_indexes(api: Any, make_collection: Any, db: Database) -> None:
    name = make_collection("hash", bulk_load=True)
    assert api.get(f"/v1/collections/{name}").json()["bulk_load"] is True
    assert indexes(db, name) == set()
    # Every document shares a word with the question, and the target two, so an approximate
    # search has a gradient to follow from anywhere in the graph (from a cluster orthogonal to
    # the question, HNSW may stop before it meets the one document that is not).
    docs = [{"id": f"d{i}", "text": f"ledger entry {i} for basalt dues"} for i in range(40)]
    docs += [{"id": f"b{i}", "text": f"basalt sample {i} from the quarry"} for i in range(10)]
    docs.append({"id": "target", "text": "volcanic basalt magma eruption"})
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    exact = query(api, name, "basalt magma", mode="vector")
    assert exact["results"][0]["document_id"] == "target"
    # Text search vectors are deferred: keyword search does not see the load yet.
    assert chunks_without_text_vector(db, name) == (51, 51)
    assert query(api, name, "magma", mode="keyword")["results"] == []

    built = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
    assert built.status_code == 200, built.text
    body = built.json()
    assert body["bulk_load"] is False and body["text_vectors_computed"] == 51
    assert body["index_build_seconds"] >= 0 and body["text_search_seconds"] >= 0
    assert indexes(db, name) == {"vector", "text"}
    assert chunks_without_text_vector(db, name) == (0, 51)
    assert query(api, name, "basalt magma", mode="vector")["results"][0]["document_id"] == "target"
    assert query(api, name, "magma", mode="keyword")["results"][0]["document_id"] == "target"

    # Out of bulk-load mode, new chunks get their vector as they are written.
    more = [{"id": "late", "text": "obsidian flows cool quickly"}]
    wait_finished(api, ingest(api, name, more)["batch_id"])
    assert chunks_without_text_vector(db, name) == (0, 52)
    assert query(api, name, "obsidian", mode="keyword")["results"][0]["document_id"] == "late"

    again = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": True}).json()
    assert again == {
        "bulk_load": True,
        "index_build_seconds": None,
        "text_search_seconds": None,
        "text_vectors_computed": None,
    }
    assert indexes(db, name) == set()


def test_a_chunk_written_while_bulk_load_ends_gets_its_vector(
    api: Any, make_collection: Any, database_url: str, db: Database
) -> None:
    name = make_collection("hash", bulk_load=True)
    wait_finished(api, ingest(api, name, [{"id": "a", "text": "granite"}])["batch_id"])
    cid = collection_id(db, name)
    url = libpq_url(database_url)
    with psycopg.connect(url) as writer:
        # A writer inside its transaction: its chunk is written without a vector (bulk-load
        # mode) and not committed yet when the mode is left.
        writer.execute(
            "INSERT INTO chunks (collection_id, document_id, doc_version, ordinal, text,"
            " char_start, char_end, token_count, content_hash, embedding)"
            " SELECT collection_id, document_id, doc_version, ordinal + 1, 'pumice floats',"
            " 0, 13, 2, content_hash, embedding FROM chunks WHERE collection_id = %s",
            [cid],
        )
        answers: list[Any] = []
        leaving = threading.Thread(
            target=lambda: answers.append(
                api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
            )
        )
        leaving.start()

        def leaving_waits_for_the_writer() -> bool:
            with psycopg.connect(url) as observer:
                row = observer.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE %%'"
                ).fetchone()
            return row is not None and row[0] == 1

        wait_for(leaving_waits_for_the_writer, timeout=30)
        assert not answers, "leaving bulk-load mode must wait for the open writer"
        writer.commit()
        leaving.join(60)
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].json()["text_vectors_computed"] == 2
    assert chunks_without_text_vector(db, name) == (0, 2)
