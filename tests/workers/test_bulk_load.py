"""Bulk-load mode: load without the vector index, then build it once; queries work throughout."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from services.db import session_scope
from tests.helpers import ingest, query, wait_finished

pytestmark = pytest.mark.usefixtures("worker")


def vector_index_exists(name: str) -> bool:
    with session_scope() as session:
        cid = session.execute(
            text("SELECT id FROM collections WHERE name = :n"), {"n": name}
        ).scalar_one()
        return bool(
            session.execute(
                text("SELECT 1 FROM pg_indexes WHERE indexname = :i"), {"i": f"chunks_hnsw_c{cid}"}
            ).first()
        )


def test_bulk_load_then_build_index(api: Any, make_collection: Any) -> None:
    name = make_collection("hash", bulk_load=True)
    assert api.get(f"/v1/collections/{name}").json()["bulk_load"] is True
    assert not vector_index_exists(name)
    # The neighbours share words with the question by degrees, so an approximate search has a
    # gradient to follow (against fifty vectors all orthogonal to the question, HNSW may stop
    # before it meets the one that is not).
    docs = [{"id": f"d{i}", "text": f"ledger entry {i} for harbour dues"} for i in range(40)]
    docs += [{"id": f"b{i}", "text": f"basalt sample {i} from the quarry"} for i in range(10)]
    docs.append({"id": "target", "text": "volcanic basalt magma eruption"})
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    exact = query(api, name, "basalt magma", mode="vector")
    assert exact["results"][0]["document_id"] == "target"

    built = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": False})
    assert built.status_code == 200, built.text
    assert built.json()["bulk_load"] is False and built.json()["index_build_seconds"] >= 0
    assert vector_index_exists(name)
    assert query(api, name, "basalt magma", mode="vector")["results"][0]["document_id"] == "target"

    again = api.put(f"/v1/collections/{name}/bulk-load", json={"enabled": True}).json()
    assert again == {"bulk_load": True, "index_build_seconds": None}
    assert not vector_index_exists(name)
