"""How a collection's chunks are stored, typed, indexed and named in SQL: one definition for
retrieval, collections, migrations and tests.

`chunks` is partitioned by collection: each collection's chunks are a partition of their own
(`chunks_c7`), so what a query plans, and what a write maintains, is one collection's table
and indexes however many collections there are. `embedding` is an untyped `vector` column;
each partition is indexed over a typed expression of it (pgvector: "Indexing with different
dimensions"), e.g. `USING hnsw ((embedding::vector(384)) vector_cosine_ops)`. Everything here
is built from trusted integers (collection ids and dimensions): the dimension must be literal
for the cast, and a literal collection id lets the planner prune to the one partition.
"""

from __future__ import annotations

from psycopg import sql

HNSW_MAX_VECTOR_DIMS = 2000
HNSW_MAX_HALFVEC_DIMS = 4000


VECTOR_STORAGE = ("vector", "halfvec")


def vector_type(dimensions: int, storage: str = "vector") -> str:
    """Returns the pgvector type a collection's vectors are indexed and searched as: half
    precision when the collection asks for it (`vector_storage`), or past HNSW's 2,000
    dimensions for full precision."""
    if storage == "halfvec" or dimensions > HNSW_MAX_VECTOR_DIMS:
        return "halfvec"
    return "vector"


def vector_expression(
    dimensions: int, column: str = "embedding", storage: str = "vector"
) -> sql.Composed:
    """Returns the typed expression the collection's index covers and its queries order by."""
    return sql.SQL("({}::{}({}))").format(
        sql.SQL(column), sql.SQL(vector_type(dimensions, storage)), sql.Literal(dimensions)
    )


def typed_parameter(name: str, dimensions: int, storage: str = "vector") -> sql.Composed:
    """Returns the bound parameter `name` cast to the collection's vector type."""
    return sql.SQL("%({})s::{}({})").format(
        sql.SQL(name), sql.SQL(vector_type(dimensions, storage)), sql.Literal(dimensions)
    )


def partition_name(collection_id: int) -> str:
    """Returns the name of the partition that holds the collection's chunks."""
    return f"chunks_c{int(collection_id)}"


def hnsw_index_name(collection_id: int) -> str:
    """Returns the name of the collection's HNSW index."""
    return f"chunks_hnsw_c{int(collection_id)}"


def text_index_name(collection_id: int) -> str:
    """Returns the name of the collection's full-text GIN index."""
    return f"chunks_fts_c{int(collection_id)}"


# Match the names above and those of a migration's table and indexes (services/spaces/
# tables.py), for tools that must tell a collection's own tables and indexes from the schema's.
COLLECTION_TABLE_PATTERN = r"^chunks_c\d+(_m\d+)?$"
COLLECTION_INDEX_PATTERN = r"^chunks_(hnsw|fts)_c\d+(_m\d+)?$|^chunks_c\d+_"


def partition_ddl(collection_id: int, parent: str = "chunks") -> sql.Composed:
    """Returns the statement that creates the collection's partition of `chunks` (of `parent`
    while a migration builds the partitioned table under another name).

    A row up to a page long keeps its text inline and uncompressed (`toast_tuple_target`:
    see migration 0009).
    """
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} FOR VALUES IN ({cid})"
        " WITH (toast_tuple_target = 8160)"
    ).format(
        name=sql.Identifier(partition_name(collection_id)),
        parent=sql.Identifier(parent),
        cid=sql.Literal(int(collection_id)),
    )


def drop_partition_ddl(collection_id: int) -> sql.Composed:
    """Returns the statement that drops the collection's partition, chunks and indexes."""
    return sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition_name(collection_id)))


def hnsw_index_ddl(
    collection_id: int,
    dimensions: int,
    storage: str = "vector",
    *,
    table: str | None = None,
    name: str | None = None,
) -> sql.Composed | None:
    """Returns the collection's HNSW index (on `table` under `name`: a migration's shadow
    table), or None past pgvector's limits."""
    if dimensions > HNSW_MAX_HALFVEC_DIMS:
        return None
    return sql.SQL("CREATE INDEX IF NOT EXISTS {name} ON {table} USING hnsw ({expr} {ops})").format(
        name=sql.Identifier(name or hnsw_index_name(collection_id)),
        table=sql.Identifier(table or partition_name(collection_id)),
        expr=vector_expression(dimensions, storage=storage),
        ops=sql.SQL(f"{vector_type(dimensions, storage)}_cosine_ops"),
    )


def text_index_ddl(collection_id: int) -> sql.Composed:
    """Returns the collection's GIN index over its chunks' text search vectors."""
    return sql.SQL("CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (tsv)").format(
        name=sql.Identifier(text_index_name(collection_id)),
        table=sql.Identifier(partition_name(collection_id)),
    )


def drop_index_ddl(collection_id: int) -> list[sql.Composed]:
    """Returns the statements that drop both of the collection's indexes, where they exist."""
    return [
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name))
        for name in (hnsw_index_name(collection_id), text_index_name(collection_id))
    ]
