"""How a collection's vectors are typed, indexed and named in SQL: one definition for
retrieval, collections, migrations and tests.

`chunks.embedding` is an untyped `vector` column shared by every collection; each collection
gets partial indexes over a typed expression of it (pgvector: "Indexing with different
dimensions"), e.g. `USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE
collection_id = 7`. Everything here is built from trusted integers (collection ids and
dimensions): the dimension must be literal for the cast, and a literal collection id lets the
planner match the partial index even under generic plans.
"""

from __future__ import annotations

from psycopg import sql

HNSW_MAX_VECTOR_DIMS = 2000
HNSW_MAX_HALFVEC_DIMS = 4000


def vector_type(dimensions: int) -> str:
    """Returns the pgvector type a collection's vectors are indexed and searched as."""
    return "vector" if dimensions <= HNSW_MAX_VECTOR_DIMS else "halfvec"


def vector_expression(dimensions: int, column: str = "embedding") -> sql.Composed:
    """Returns the typed expression the collection's index covers and its queries order by."""
    return sql.SQL("({}::{}({}))").format(
        sql.SQL(column), sql.SQL(vector_type(dimensions)), sql.Literal(dimensions)
    )


def typed_parameter(name: str, dimensions: int) -> sql.Composed:
    """Returns the bound parameter `name` cast to the collection's vector type."""
    return sql.SQL("%({})s::{}({})").format(
        sql.SQL(name), sql.SQL(vector_type(dimensions)), sql.Literal(dimensions)
    )


def hnsw_index_name(collection_id: int) -> str:
    """Returns the name of the collection's HNSW index."""
    return f"chunks_hnsw_c{int(collection_id)}"


def text_index_name(collection_id: int) -> str:
    """Returns the name of the collection's full-text GIN index."""
    return f"chunks_fts_c{int(collection_id)}"


# Matches the names above, for tools that must tell per-collection indexes from the schema's.
COLLECTION_INDEX_PATTERN = r"^chunks_(hnsw|fts)_c\d+$"


def hnsw_index_ddl(collection_id: int, dimensions: int) -> sql.Composed | None:
    """Returns the partial HNSW index for one collection, or None past pgvector's limits."""
    if dimensions > HNSW_MAX_HALFVEC_DIMS:
        return None
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON chunks USING hnsw ({expr} {ops})"
        " WHERE collection_id = {cid}"
    ).format(
        name=sql.Identifier(hnsw_index_name(collection_id)),
        expr=vector_expression(dimensions),
        ops=sql.SQL(f"{vector_type(dimensions)}_cosine_ops"),
        cid=sql.Literal(int(collection_id)),
    )


def text_index_ddl(collection_id: int) -> sql.Composed:
    """Returns the partial GIN index over the chunks' text search vectors for one collection."""
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON chunks USING gin (tsv) WHERE collection_id = {cid}"
    ).format(
        name=sql.Identifier(text_index_name(collection_id)), cid=sql.Literal(int(collection_id))
    )


def drop_index_ddl(collection_id: int) -> list[sql.Composed]:
    """Returns the statements that drop both of the collection's indexes, where they exist."""
    return [
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name))
        for name in (hnsw_index_name(collection_id), text_index_name(collection_id))
    ]
