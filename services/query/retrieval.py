"""Nearest-neighbour retrieval in one SQL statement per embedding space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql
from sqlalchemy.orm import Session

from services.collections.service import vector_expression, vector_type
from services.db import driver_connection
from services.embedding.base import Vectors
from services.models import Collection
from services.query.grounding import Scored


@dataclass(frozen=True)
class Candidate(Scored):
    """A chunk close to the query, with what a citation needs."""

    document_id: str
    title: str | None
    source: str | None
    text: str
    ordinal: int
    start: int
    end: int
    metadata: dict[str, Any]


def vector_search_sql(collection_id: int, dimensions: int) -> sql.Composed:
    """Builds the k-nearest-neighbour statement for one collection.

    The collection id and dimensions are trusted integers written as literals, so the planner
    can match the collection's partial HNSW index on every execution (a generic plan with a
    bound collection id could not). Only the query vector and k are bound parameters.
    """
    expr = vector_expression(dimensions)
    query = sql.SQL("%(q)s::{kind}({dims})").format(
        kind=sql.SQL(vector_type(dimensions)), dims=sql.Literal(dimensions)
    )
    return sql.SQL(
        "SELECT d.external_id, d.title, d.source, d.metadata, c.text, c.ordinal,"
        " c.char_start, c.char_end, 1 - c.distance AS score"
        " FROM (SELECT document_id, text, ordinal, char_start, char_end,"
        " {expr} <=> {query} AS distance"
        " FROM chunks WHERE collection_id = {cid}"
        " ORDER BY {expr} <=> {query} LIMIT %(k)s) AS c"
        " JOIN documents AS d ON d.id = c.document_id"
        " ORDER BY c.distance"
    ).format(expr=expr, query=query, cid=sql.Literal(collection_id))


def search(session: Session, collection: Collection, vector: Vectors, k: int) -> list[Candidate]:
    """Returns up to `k` chunks of the collection nearest to `vector`, best first."""
    conn = driver_connection(session)
    with conn.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT set_config('hnsw.ef_search', {}, true)").format(
                sql.Literal(str(max(40, 2 * k)))
            )
        )
        cursor.execute(
            vector_search_sql(collection.id, collection.dimensions), {"q": vector, "k": k}
        )
        rows = cursor.fetchall()
    return [
        Candidate(
            score=float(score),
            document_id=ext,
            title=title,
            source=source,
            metadata=metadata or {},
            text=text,
            ordinal=ordinal,
            start=start,
            end=end,
        )
        for ext, title, source, metadata, text, ordinal, start, end, score in rows
    ]
