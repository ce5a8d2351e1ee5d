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
BM25_K1 = 1.2
BM25_B = 0.75


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
    where = _document_filter(collection.id, filter_sql)
    vector_cte = sql.SQL(
        "vec AS (SELECT id, row_number() OVER (ORDER BY distance) AS r, 1 - distance AS s"
        " FROM (SELECT id, {expr} <=> {q} AS distance FROM chunks"
        " WHERE collection_id = {cid}{where} ORDER BY {expr} <=> {q} LIMIT %(pool)s) AS v)"
    ).format(expr=expr, q=question, cid=cid, where=where)
    # Okapi BM25 in two steps. First, term at a time: each question term's postings come from
    # the collection's GIN index (which also gives its document frequency), scored as if each
    # term occurred once; collection size and mean chunk length come from the documents table.
    # Then the best 2 x pool of those are scored exactly, with term frequencies read from their
    # tsvectors, so only a few hundred tsvectors are ever decompressed.
    keyword_cte = sql.SQL(
        "terms AS (SELECT DISTINCT lexeme AS term"
        " FROM unnest(to_tsvector({cfg}::regconfig, %(text)s))),"
        " stats AS (SELECT greatest(sum(chunk_count), 1)::float8 AS n,"
        " greatest(sum(token_count)::float8 / greatest(sum(chunk_count), 1), 1) AS avgdl"
        " FROM documents WHERE collection_id = {cid} AND indexed_version IS NOT NULL),"
        " postings AS (SELECT terms.term, c.id, c.document_id, c.token_count FROM terms"
        " CROSS JOIN LATERAL (SELECT id, document_id, token_count FROM chunks"
        " WHERE collection_id = {cid}"
        " AND tsv @@ to_tsquery('simple', quote_literal(terms.term))) AS c),"
        " idf AS (SELECT term, ln(1 + (stats.n - count(*) + 0.5) / (count(*) + 0.5)) AS w"
        " FROM postings CROSS JOIN stats GROUP BY term, stats.n),"
        " rough AS (SELECT postings.id FROM postings JOIN idf USING (term) CROSS JOIN stats"
        " WHERE true{where} GROUP BY postings.id"
        " ORDER BY sum(idf.w / (1 + {k1} * (1 - {b} + {b} * postings.token_count / stats.avgdl)))"
        " DESC LIMIT 2 * %(pool)s),"
        " kw AS (SELECT id, row_number() OVER (ORDER BY s DESC, id) AS r, s FROM"
        " (SELECT c.id, sum(idf.w * u.tf * {k1p1} / (u.tf + {k1} * (1 - {b} + {b}"
        " * c.token_count / stats.avgdl))) AS s"
        " FROM rough JOIN chunks AS c ON c.id = rough.id"
        " CROSS JOIN LATERAL (SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf"
        " FROM unnest(c.tsv)) AS u JOIN idf ON idf.term = u.lexeme CROSS JOIN stats"
        " GROUP BY c.id ORDER BY s DESC LIMIT %(pool)s) AS t)"
    ).format(
        cfg=sql.Literal(collection.language),
        cid=cid,
        where=where,
        k1=sql.Literal(BM25_K1),
        k1p1=sql.Literal(BM25_K1 + 1),
        b=sql.Literal(BM25_B),
    )
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
            " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('plan_cache_mode', 'force_custom_plan', true)",
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
