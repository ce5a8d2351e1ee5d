"""Retrieval in one SQL statement per query: vector (HNSW), keyword (full text) or both,
fused by reciprocal rank, with optional metadata filters.

Every returned passage carries its cosine similarity to the question (`score`, the value the
relevance threshold applies to, whatever the mode) and the mode's ranking score (`rank_score`:
the cosine similarity, the `ts_rank` of the keyword match, or the fused RRF score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql
from sqlalchemy.orm import Session

from services.collections.service import vector_expression, vector_type
from services.db import driver_connection
from services.embedding.base import Vectors
from services.models import Collection
from services.query.filters import compile_filter
from services.query.grounding import Scored

Mode = Literal["hybrid", "vector", "keyword"]
RRF_K = 60


@dataclass(frozen=True)
class Candidate(Scored):
    """A chunk close to the query, with what a citation needs."""

    rank_score: float
    document_id: str
    title: str | None
    source: str | None
    text: str
    ordinal: int
    start: int
    end: int
    metadata: dict[str, Any]
    content_hash: bytes


def candidate_pool(k: int) -> int:
    """How many candidates each retriever contributes before fusion and cut to k."""
    return min(max(2 * k, 50), 400)


def _document_filter(collection_id: int, filter_sql: sql.Composable | None) -> sql.Composable:
    if filter_sql is None:
        return sql.SQL("")
    return sql.SQL(
        " AND document_id = ANY(ARRAY(SELECT d.id FROM documents AS d"
        " WHERE d.collection_id = {cid} AND {f}))"
    ).format(cid=sql.Literal(collection_id), f=filter_sql)


def search_sql(
    collection: Collection, mode: Mode, filter_sql: sql.Composable | None = None
) -> sql.Composed:
    """Builds the retrieval statement for one collection and mode.

    The collection id, dimensions and text search configuration are trusted values written as
    literals, so the planner matches the collection's partial HNSW and GIN indexes on every
    execution (a generic plan with a bound collection id could not). The question (vector and
    text), k, the pool size and filter values are bound parameters. A filter is evaluated
    inside the index scans, as an array of matching documents computed once, so pgvector's
    iterative scan keeps going until it has enough matching rows.
    """
    cid = sql.Literal(collection.id)
    expr = vector_expression(collection.dimensions)
    question = sql.SQL("%(q)s::{}({})").format(
        sql.SQL(vector_type(collection.dimensions)), sql.Literal(collection.dimensions)
    )
    # Any of the question's words, not all: plainto_tsquery ANDs them, which finds nothing for
    # most natural-language questions. Lexemes come out quoted, so the swap is safe.
    tsquery = sql.SQL(
        "to_tsquery('simple', replace(plainto_tsquery({cfg}::regconfig, %(text)s)::text,"
        " ' & ', ' | '))"
    ).format(cfg=sql.Literal(collection.language))
    where = _document_filter(collection.id, filter_sql)
    vector_cte = sql.SQL(
        "vec AS (SELECT id, row_number() OVER (ORDER BY distance) AS r, 1 - distance AS s"
        " FROM (SELECT id, {expr} <=> {q} AS distance FROM chunks"
        " WHERE collection_id = {cid}{where} ORDER BY {expr} <=> {q} LIMIT %(pool)s) AS v)"
    ).format(expr=expr, q=question, cid=cid, where=where)
    keyword_cte = sql.SQL(
        "kw AS (SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS r, rank AS s"
        " FROM (SELECT id, ts_rank(tsv, query, 1) AS rank FROM chunks, {tsq} AS query"
        " WHERE collection_id = {cid} AND tsv @@ query{where}"
        " ORDER BY rank DESC LIMIT %(pool)s) AS t)"
    ).format(tsq=tsquery, cid=cid, where=where)
    ranked: sql.Composable
    if mode == "vector":
        ctes, ranked = [vector_cte], sql.SQL("SELECT id, s AS rank_score FROM vec")
    elif mode == "keyword":
        ctes, ranked = [keyword_cte], sql.SQL("SELECT id, s AS rank_score FROM kw")
    else:
        ctes = [vector_cte, keyword_cte]
        ranked = sql.SQL(
            "SELECT id, sum(1.0 / ({rrf} + r)) AS rank_score FROM"
            " (SELECT id, r FROM vec UNION ALL SELECT id, r FROM kw) AS u GROUP BY id"
        ).format(rrf=sql.Literal(RRF_K))
    return sql.SQL(
        "WITH {ctes}, ranked AS ({ranked})"
        " SELECT 1 - ({expr} <=> {q}) AS score, ranked.rank_score, d.external_id, d.title,"
        " d.source, d.metadata, c.text, c.ordinal, c.char_start, c.char_end, c.content_hash"
        " FROM ranked JOIN chunks AS c ON c.id = ranked.id"
        " JOIN documents AS d ON d.id = c.document_id"
        " ORDER BY ranked.rank_score DESC, c.id LIMIT %(k)s"
    ).format(
        ctes=sql.SQL(", ").join(ctes),
        ranked=ranked,
        expr=sql.SQL("(c.embedding::{}({}))").format(
            sql.SQL(vector_type(collection.dimensions)), sql.Literal(collection.dimensions)
        ),
        q=question,
    )


def search(
    session: Session,
    collection: Collection,
    vector: Vectors,
    question: str,
    k: int,
    mode: Mode = "hybrid",
    metadata_filter: Any = None,
) -> list[Candidate]:
    """Returns up to `k` chunks of the collection for the question, best first."""
    filter_sql: sql.Composable | None = None
    params: dict[str, Any] = {}
    if metadata_filter is not None:
        filter_sql, params = compile_filter(metadata_filter, sql.SQL("d.metadata"))
    pool = candidate_pool(k)
    conn = driver_connection(session)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true),"
            " set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            [str(max(40, pool))],
        )
        cursor.execute(
            search_sql(collection, mode, filter_sql),
            {"q": vector, "text": question, "k": k, "pool": pool, **params},
        )
        rows = cursor.fetchall()
    return [
        Candidate(
            score=float(row[0]),
            rank_score=float(row[1]),
            document_id=row[2],
            title=row[3],
            source=row[4],
            metadata=row[5] or {},
            text=row[6],
            ordinal=row[7],
            start=row[8],
            end=row[9],
            content_hash=bytes(row[10]),
        )
        for row in rows
    ]
