"""Retrieval in one SQL statement per query: vector (HNSW), keyword (Okapi BM25 over
PostgreSQL full text) or both, fused by reciprocal rank, with optional metadata filters.

Every returned passage carries its cosine similarity to the question (`score`, the value the
relevance threshold applies to, whatever the mode) and the mode's ranking score (`rank_score`:
the cosine similarity, the BM25 score of the keyword match, or the fused RRF score).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.orm import Session

from services.db import driver_connection
from services.embedding import Vectors
from services.models import Collection
from services.query.candidates import Candidate, Mode
from services.query.filters import compile_filter
from services.spaces.tables import shadow_name
from services.vectors import partition_name, typed_parameter, vector_expression


@dataclass(frozen=True)
class SearchSpace:
    """Where a search runs: the collection's partition of `chunks` (the active space), or
    a migration's shadow table (`migration_id`), with the dimensions of its vectors."""

    collection_id: int
    dimensions: int
    language: str
    migration_id: int | None = None
    generation: int = 0  # the collection's space generation it expects (the active space)
    storage: str = "vector"  # the precision its index and searches compare in

    @classmethod
    def active(cls, collection: Collection) -> SearchSpace:
        """The collection's active space."""
        return cls(
            collection.id, collection.dimensions, collection.language, None,
            collection.space_generation or 0, collection.vector_storage or "vector",
        )  # fmt: skip

    def guard(self) -> sql.Composed:
        """A scalar query that equals `generation` while the table holds this space."""
        if self.migration_id is None:
            return sql.SQL("SELECT space_generation FROM collections WHERE id = {}").format(
                sql.Literal(int(self.collection_id))
            )
        return sql.SQL(
            "SELECT CASE WHEN status IN ('building', 'ready') THEN {} ELSE -1 END"
            " FROM space_migrations WHERE id = {}"
        ).format(sql.Literal(self.generation), sql.Literal(int(self.migration_id)))

    def table(self) -> str:
        """The table its chunks are in."""
        if self.migration_id is None:
            return partition_name(self.collection_id)
        return shadow_name(self.collection_id, self.migration_id)

    def stats_from(self) -> sql.Composed:
        """Where its chunk and token counts are (for BM25's collection statistics)."""
        if self.migration_id is None:
            return sql.SQL(
                "documents WHERE collection_id = {} AND indexed_version IS NOT NULL"
            ).format(sql.Literal(int(self.collection_id)))
        return sql.SQL(
            "space_documents WHERE migration_id = {} AND built_version IS NOT NULL"
        ).format(sql.Literal(int(self.migration_id)))


RRF_K = 60
BM25_K1 = 1.2
BM25_B = 0.75

# The whole hybrid statement, one SQL text. `{name}` marks a literal part written per
# collection from trusted values (see `search_sql`): `{chunks}` is the collection's own
# partition of the chunks table; `%(name)s` marks a bound parameter of the request. The
# `-- <section>:` lines split it: vector and keyword modes leave out the other retriever's
# section (PostgreSQL would plan it even though nothing reads it).
#
# Both retrievers keep only chunks the caller's principals may read (no access list, or one
# sharing a principal), inside the index scans, so the threshold never sees a hidden chunk.
#
# vector: the pool's nearest chunks by cosine distance, from the collection's HNSW index.
# keyword: Okapi BM25 in two steps. First term at a time: each question term's postings come
#   from the collection's GIN index (which also gives its document frequency), scored as if
#   each term occurred once; collection size and mean chunk length come from the documents
#   table. Then the best 2 x pool of those (rough) are scored exactly (kw), with term
#   frequencies read from their tsvectors, so only a few hundred tsvectors are decompressed.
# result: `{ranked}` ranks by the mode (`vec`, `kw`, or both fused by reciprocal rank); every
#   passage is returned with its cosine similarity to the question. The first column, on every
#   row and on the one row of NULLs when nothing matched, is `{guard}`: the space the table
#   holds as this statement sees it (a collection's space generation), so a query planned for
#   a space the collection has just left is told, and asked again (SpaceChanged).
SEARCH_SQL = """
WITH
-- vector:
vec AS (
    SELECT id, row_number() OVER (ORDER BY distance) AS r, 1 - distance AS s
    FROM (
        SELECT id, {embedding} <=> {question} AS distance
        FROM {chunks}
        WHERE (access IS NULL OR access && %(principals)s::text[]){document_filter}
        ORDER BY {embedding} <=> {question}
        LIMIT %(pool)s
    ) AS v
),
-- keyword:
terms AS (
    SELECT DISTINCT lexeme AS term
    FROM unnest(to_tsvector({language}::regconfig, %(text)s))
), stats AS (
    SELECT greatest(sum(chunk_count), 1)::float8 AS n,
           greatest(sum(token_count)::float8 / greatest(sum(chunk_count), 1), 1) AS avgdl
    FROM {stats_from}
), postings AS (
    SELECT terms.term, c.id, c.document_id, c.token_count
    FROM terms CROSS JOIN LATERAL (
        SELECT id, document_id, token_count
        FROM {chunks}
        WHERE tsv @@ to_tsquery('simple', quote_literal(terms.term))
          AND (access IS NULL OR access && %(principals)s::text[])
    ) AS c
), idf AS (
    SELECT term, ln(1 + (stats.n - count(*) + 0.5) / (count(*) + 0.5)) AS w
    FROM postings CROSS JOIN stats
    GROUP BY term, stats.n
), rough AS (
    SELECT postings.id
    FROM postings JOIN idf USING (term) CROSS JOIN stats
    WHERE true{document_filter}
    GROUP BY postings.id
    ORDER BY sum(idf.w / (1 + {k1} * (1 - {b} + {b} * postings.token_count / stats.avgdl))) DESC
    LIMIT 2 * %(pool)s
), kw AS (
    SELECT id, row_number() OVER (ORDER BY s DESC, id) AS r, s
    FROM (
        SELECT c.id,
               sum(idf.w * u.tf * ({k1} + 1)
                   / (u.tf + {k1} * (1 - {b} + {b} * c.token_count / stats.avgdl))) AS s
        FROM rough
        JOIN {chunks} AS c ON c.id = rough.id
        CROSS JOIN LATERAL (
            SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf FROM unnest(c.tsv)
        ) AS u
        JOIN idf ON idf.term = u.lexeme
        CROSS JOIN stats
        GROUP BY c.id
        ORDER BY s DESC
        LIMIT %(pool)s
    ) AS t
),
-- result:
ranked AS (
    {ranked}
), hits AS (
    SELECT 1 - ({chunk_embedding} <=> {question}) AS score, ranked.rank_score,
           d.external_id, d.title, d.source, d.metadata,
           c.text, c.ordinal, c.char_start, c.char_end, c.content_hash, c.location,
           c.id AS chunk_id
    FROM ranked
    JOIN {chunks} AS c ON c.id = ranked.id
    JOIN documents AS d ON d.id = c.document_id
    ORDER BY ranked.rank_score DESC, c.id
    LIMIT %(k)s
)
SELECT ({guard}) AS space, hits.*
FROM (SELECT 1) AS one LEFT JOIN hits ON true
ORDER BY hits.rank_score DESC NULLS LAST, hits.chunk_id
"""


def _sections(statement: str) -> dict[str, str]:
    """Splits the statement at its `-- <section>:` lines; the text before the first is `head`."""
    sections: dict[str, str] = {}
    name, lines = "head", list[str]()
    for line in statement.splitlines(keepends=True):
        if line.startswith("-- ") and line.rstrip().endswith(":"):
            sections[name] = "".join(lines)
            name, lines = line[3:].rstrip()[:-1], []
        lines.append(line)
    sections[name] = "".join(lines)
    return sections


_SECTIONS = _sections(SEARCH_SQL)
# The sections each mode's statement is made of, in order.
MODE_SECTIONS: dict[str, tuple[str, ...]] = {
    "hybrid": ("head", "vector", "keyword", "result"),
    "vector": ("head", "vector", "result"),
    "keyword": ("head", "keyword", "result"),
}
STATEMENTS = {mode: "".join(_SECTIONS[s] for s in parts) for mode, parts in MODE_SECTIONS.items()}

RANKED: dict[str, str] = {
    "vector": "SELECT id, s AS rank_score FROM vec",
    "keyword": "SELECT id, s AS rank_score FROM kw",
    "hybrid": (
        "SELECT id, sum(1.0 / ({rrf_k} + r)) AS rank_score"
        " FROM (SELECT id, r FROM vec UNION ALL SELECT id, r FROM kw) AS u GROUP BY id"
    ),
}

# A filter keeps the chunks of matching documents: an array computed once, inside the scans.
DOCUMENT_FILTER = (
    " AND document_id = ANY(ARRAY(SELECT d.id FROM documents AS d"
    " WHERE d.collection_id = {collection_id} AND {filter}))"
)


def candidate_pool(k: int) -> int:
    """How many candidates each retriever contributes before fusion and cut to k."""
    return min(max(2 * k, 50), 400)


def search_sql(
    target: Collection | SearchSpace, mode: Mode, filter_sql: sql.Composable | None = None
) -> sql.Composed:
    """Builds the retrieval statement for one collection and mode.

    The collection's partition, dimensions and text search configuration are trusted values
    written as literals, so the planner sees the collection's own table and its HNSW and GIN
    indexes on every execution, whatever the number of collections. The question (vector and
    text), k, the pool size and filter values are bound parameters. A filter is evaluated
    inside the index scans, as an array of matching documents computed once, so pgvector's
    iterative scan keeps going until it has enough matching rows.
    """
    space = target if isinstance(target, SearchSpace) else SearchSpace.active(target)
    collection_id = sql.Literal(space.collection_id)
    document_filter: sql.Composable = sql.SQL("")
    if filter_sql is not None:
        document_filter = sql.SQL(DOCUMENT_FILTER).format(
            collection_id=collection_id, filter=filter_sql
        )
    return sql.SQL(STATEMENTS[mode]).format(
        chunks=sql.Identifier(space.table()),
        embedding=vector_expression(space.dimensions, storage=space.storage),
        chunk_embedding=vector_expression(space.dimensions, "c.embedding", space.storage),
        question=typed_parameter("q", space.dimensions, space.storage),
        collection_id=collection_id,
        stats_from=space.stats_from(),
        guard=space.guard(),
        document_filter=document_filter,
        language=sql.Literal(space.language),
        k1=sql.Literal(BM25_K1),
        b=sql.Literal(BM25_B),
        ranked=sql.SQL(RANKED[mode]).format(rrf_k=sql.Literal(RRF_K)),
    )


class SpaceChanged(RuntimeError):
    """The collection switched embedding spaces (or its shadow space closed) between reading
    its settings and searching: the question's vector is of the other space."""


@contextmanager
def _space_errors() -> Iterator[None]:
    """A question's vector cast to a table of the other space's dimensions, or a shadow table
    dropped meanwhile, is the space changing under the query."""
    try:
        yield
    except psycopg.errors.UndefinedTable as error:
        raise SpaceChanged(str(error)) from error
    except psycopg.errors.DataException as error:
        if "dimensions, not" not in str(error):
            raise
        raise SpaceChanged(str(error)) from error


def search(
    session: Session,
    target: Collection | SearchSpace,
    vector: Vectors,
    question: str,
    k: int,
    mode: Mode = "hybrid",
    metadata_filter: Any = None,
    principals: tuple[str, ...] = (),
) -> list[Candidate]:
    """Returns up to `k` chunks of the collection for the question, best first, of documents
    without an access list or sharing a principal with `principals`."""
    filter_sql: sql.Composable | None = None
    params: dict[str, Any] = {}
    if metadata_filter is not None:
        filter_sql, params = compile_filter(metadata_filter, sql.SQL("d.metadata"))
    pool = candidate_pool(k)
    space = target if isinstance(target, SearchSpace) else SearchSpace.active(target)
    conn = driver_connection(session)
    with conn.cursor() as cursor, _space_errors():
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true),"
            " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('plan_cache_mode', 'force_custom_plan', true)",
            [str(max(40, pool))],
        )
        cursor.execute(
            search_sql(space, mode, filter_sql),
            {
                "q": vector,
                "text": question,
                "k": k,
                "pool": pool,
                "principals": list(principals),
                **params,
            },
        )
        rows = cursor.fetchall()
    if not rows or rows[0][0] != space.generation:
        raise SpaceChanged("the collection switched embedding spaces during the query")
    return [
        Candidate(
            score=float(row[1]),
            rank_score=float(row[2]),
            document_id=row[3],
            title=row[4],
            source=row[5],
            metadata=row[6] or {},
            text=row[7],
            ordinal=row[8],
            start=row[9],
            end=row[10],
            content_hash=bytes(row[11]),
            location=row[12],
        )
        for row in rows
        if row[1] is not None
    ]
