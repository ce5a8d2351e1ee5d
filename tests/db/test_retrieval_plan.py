"""Each retrieval mode is answered from the collection's partial HNSW and GIN indexes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from psycopg import sql
from sqlalchemy import text as sql_text

from services.db import Database, driver_connection
from services.models import Collection
from services.query.filters import compile_filter
from services.query.retrieval import search_sql
from services.runtime import Runtime
from services.vectors import hnsw_index_name, text_index_name
from tests.support.waiting import wait_for
from workers import pipeline


def explain(
    db: Database,
    collection: Collection,
    mode: Any,
    metadata_filter: Any = None,
    disabled: tuple[str, ...] = ("enable_seqscan", "enable_bitmapscan", "enable_sort"),
) -> str:
    filter_sql: Any = None
    params: dict[str, Any] = {}
    if metadata_filter is not None:
        filter_sql, params = compile_filter(metadata_filter, sql.SQL("d.metadata"))
    statement = search_sql(collection, mode, filter_sql)
    values = {
        "q": np.ones(collection.dimensions, dtype=np.float32),
        "text": "lighthouse keepers",
        "k": 5,
        "pool": 50,
        "principals": ["group:hr"],
        **params,
    }
    with db.scope() as session:
        conn = driver_connection(session)
        # On a tiny table a full scan is cheapest; discourage the alternatives so the plan
        # shows whether the partial indexes *can* serve the statement at all.
        for setting in disabled:
            conn.execute(sql.SQL("SET LOCAL {} = off").format(sql.Identifier(setting)))
        # Run it often enough for psycopg to prepare it and Postgres to consider a generic plan.
        for _ in range(7):
            conn.execute(statement, values, prepare=True)
        rows = conn.execute(sql.SQL("EXPLAIN ") + statement, values).fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_hnsw_index_serves_vector_search(
    api: Any, make_collection: Any, db: Database, mode: str
) -> None:
    names = [make_collection("hash"), make_collection("hash", vector_storage="halfvec")]
    with db.scope() as session:
        collections = [session.query(Collection).filter_by(name=n).one() for n in names]
    # GIN is read by bitmap scans only, so hybrid plans keep those allowed.
    disabled = ("enable_seqscan", "enable_sort") + (
        ("enable_bitmapscan",) if mode == "vector" else ()
    )
    for collection in collections:
        plan = explain(db, collection, mode, disabled=disabled)
        assert hnsw_index_name(collection.id) in plan, plan
        assert "Seq Scan on chunks" not in plan, plan
        if mode == "hybrid":
            assert text_index_name(collection.id) in plan, plan
        else:  # the keyword CTEs of the one statement are neither planned nor run
            assert text_index_name(collection.id) not in plan, plan
            assert "CTE postings" not in plan and "CTE idf" not in plan, plan
        filtered = explain(db, collection, mode, {"team": "hr"}, disabled=disabled)
        assert hnsw_index_name(collection.id) in filtered, filtered
    with db.scope() as session:  # the second one's index is in half precision
        kinds = session.execute(
            sql_text("SELECT indexdef FROM pg_indexes WHERE indexname = ANY(:names)"),
            {"names": [hnsw_index_name(c.id) for c in collections]},
        ).scalars()
        assert sorted("halfvec_cosine_ops" in k for k in kinds) == [False, True]


def test_keyword_search_uses_the_gin_index(
    api: Any, make_collection: Any, runtime: Runtime, db: Database
) -> None:
    name = make_collection("hash", chunk_tokens=32, chunk_overlap=0)
    words = ["harbour", "granite", "meadow", "copper", "violin", "saddle", "orbit", "lantern"]
    docs = [
        {"id": f"d{i}", "text": " ".join(words[(i + j) % len(words)] + f"{j}" for j in range(20))}
        for i in range(300)
    ]
    docs[7]["text"] += " The lighthouse keepers kept the lamp lit."
    for start in range(0, len(docs), 100):
        accepted = api.post(
            f"/v1/collections/{name}/documents", json={"documents": docs[start : start + 100]}
        )
        assert accepted.status_code == 202
    with db.scope() as session:
        collection = session.query(Collection).filter_by(name=name).one()
        ids = session.execute(
            sql_text("SELECT id, version FROM documents WHERE collection_id = :c"),
            {"c": collection.id},
        ).all()
    items = [(int(i), int(v)) for i, v in ids]
    # A worker another test started may take some over; then it finishes them.
    pipeline.process_now(runtime, items)

    def all_done() -> bool:
        with db.scope() as session:
            done = session.execute(
                sql_text(
                    "SELECT count(*) FROM documents WHERE collection_id = :c AND status = 'done'"
                ),
                {"c": collection.id},
            ).scalar_one()
        return int(done) == len(ids)

    wait_for(all_done, timeout=60)
    with db.scope() as session:
        session.execute(sql_text("ANALYZE chunks"))
    plan = explain(db, collection, "keyword", disabled=("enable_seqscan",))
    assert text_index_name(collection.id) in plan, plan
    assert hnsw_index_name(collection.id) not in plan, plan
