"""The retrieval statement is answered from the collection's partial HNSW index."""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import sql

from services.db import driver_connection, session_scope
from services.models import Collection
from services.query.retrieval import vector_search_sql


def explain(collection: Collection, executions: int = 1) -> str:
    with session_scope() as session:
        conn = driver_connection(session)
        query = vector_search_sql(collection.id, collection.dimensions)
        vector = np.ones(collection.dimensions, dtype=np.float32)
        # On a tiny table a full scan is cheapest; discourage the alternatives so the plan
        # shows whether the partial HNSW index *can* serve the statement at all.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(sql.SQL("SET LOCAL {} = off").format(sql.Identifier(setting)))
        # Run it often enough for psycopg to prepare it and Postgres to consider a generic plan.
        for _ in range(executions):
            conn.execute(query, {"q": vector, "k": 5}, prepare=True)
        rows = conn.execute(sql.SQL("EXPLAIN ") + query, {"q": vector, "k": 5}).fetchall()
    return "\n".join(r[0] for r in rows)


def test_hnsw_index_serves_the_query(api: Any, make_collection: Any) -> None:
    names = [make_collection("hash"), make_collection("hash")]
    with session_scope() as session:
        collections = [session.query(Collection).filter_by(name=n).one() for n in names]
    for collection in collections:
        plan = explain(collection, executions=7)
        assert f"chunks_hnsw_c{collection.id}" in plan, plan
        assert "Seq Scan on chunks" not in plan, plan
        assert "chunks_collection" not in plan, plan
