"""Creating, finding and dropping collections, with their per-space vector index."""

from __future__ import annotations

import time

from psycopg import sql
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.collections.schemas import CollectionCreate, DocumentCounts
from services.db import get_engine
from services.embedding import EmbeddingError, UnknownEmbedder, get_embedder, parse_embedder_spec
from services.errors import ApiError
from services.models import Collection, Document

HNSW_MAX_VECTOR_DIMS = 2000
HNSW_MAX_HALFVEC_DIMS = 4000


def vector_type(dimensions: int) -> str:
    """Returns the pgvector type a collection's vectors are indexed and searched as."""
    return "vector" if dimensions <= HNSW_MAX_VECTOR_DIMS else "halfvec"


def vector_expression(dimensions: int) -> sql.Composable:
    """Returns the typed expression the collection's index covers and its queries order by."""
    return sql.SQL("(embedding::{}({}))").format(
        sql.SQL(vector_type(dimensions)), sql.Literal(dimensions)
    )


def index_name(collection_id: int) -> sql.Identifier:
    """Returns the name of the collection's HNSW index."""
    return sql.Identifier(f"chunks_hnsw_c{collection_id}")


def text_index_name(collection_id: int) -> sql.Identifier:
    """Returns the name of the collection's full-text GIN index."""
    return sql.Identifier(f"chunks_fts_c{collection_id}")


def text_index_ddl(collection_id: int) -> sql.Composed:
    """Returns the partial GIN index over the chunks' generated tsvector for one collection."""
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON chunks USING gin (tsv) WHERE collection_id = {cid}"
    ).format(name=text_index_name(collection_id), cid=sql.Literal(collection_id))


def index_ddl(collection_id: int, dimensions: int) -> sql.Composed | None:
    """Returns the partial HNSW index for one collection, or None past pgvector's limits.

    Built from trusted integers only: the dimension must be literal for the cast, and a
    literal collection id lets the planner match the partial index even under generic plans.
    """
    if dimensions > HNSW_MAX_HALFVEC_DIMS:
        return None
    ops = f"{vector_type(dimensions)}_cosine_ops"
    return sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON chunks USING hnsw ({expr} {ops})"
        " WHERE collection_id = {cid}"
    ).format(
        name=index_name(collection_id),
        expr=vector_expression(dimensions),
        ops=sql.SQL(ops),
        cid=sql.Literal(collection_id),
    )


def create_collection(session: Session, body: CollectionCreate) -> Collection:
    """Creates the collection and its vector index; raises ApiError on bad settings."""
    try:
        parse_embedder_spec(body.embedder)
        embedder = get_embedder(body.embedder)
    except UnknownEmbedder as error:
        raise ApiError(422, "unknown_embedder", str(error)) from error
    except EmbeddingError as error:
        raise ApiError(503, "embedder_unavailable", str(error)) from error
    chunk_tokens = body.chunk_tokens or min(
        embedder.max_input_tokens, 200 if body.embedder == "local" else 512
    )
    if chunk_tokens > embedder.max_input_tokens:
        raise ApiError(
            422,
            "invalid_request",
            f"chunk_tokens {chunk_tokens} exceeds the embedder's maximum input of "
            f"{embedder.max_input_tokens} tokens",
        )
    overlap = body.chunk_overlap if body.chunk_overlap is not None else chunk_tokens // 8
    if overlap >= chunk_tokens:
        raise ApiError(422, "invalid_request", "chunk_overlap must be below chunk_tokens")
    known_language = session.execute(
        text("SELECT 1 FROM pg_ts_config WHERE cfgname = :name"), {"name": body.language}
    ).first()
    if known_language is None:
        raise ApiError(
            422, "invalid_request", f"unknown text search configuration {body.language!r}"
        )
    collection = Collection(
        name=body.name,
        embedder=body.embedder,
        dimensions=embedder.dimensions,
        max_input_tokens=embedder.max_input_tokens,
        chunk_tokens=chunk_tokens,
        chunk_overlap=overlap,
        threshold=body.threshold if body.threshold is not None else embedder.default_threshold,
        language=body.language,
        bulk_load=body.bulk_load,
    )
    session.add(collection)
    try:
        session.flush()
    except IntegrityError as error:
        raise ApiError(409, "conflict", f"collection {body.name!r} already exists") from error
    if not collection.bulk_load:  # in bulk-load mode both are built when the load is done
        ddl = index_ddl(collection.id, collection.dimensions)
        if ddl is not None:
            session.execute(text(ddl.as_string()))
        session.execute(text(text_index_ddl(collection.id).as_string()))
    return collection


def enter_bulk_load(session: Session, collection: Collection) -> None:
    """Puts the collection in bulk-load mode: its indexes go, and text search is deferred.

    In bulk-load mode the collection has no HNSW and no GIN index, and its new chunks are
    written without their text search vector (the `chunks_text_search` trigger leaves it
    NULL): computing it is most of what writing a chunk costs the database, which every
    worker shares. Meanwhile vector search is exact (a scan), and keyword search sees only
    the chunks written before the mode was entered.
    """
    collection.bulk_load = True
    for name in (index_name(collection.id), text_index_name(collection.id)):
        session.execute(text(sql.SQL("DROP INDEX IF EXISTS {}").format(name).as_string()))


def leave_bulk_load(session: Session, collection: Collection) -> tuple[int, float]:
    """Takes the collection out of bulk-load mode and computes its deferred text search vectors.

    Returns how many chunks got their vector, and the seconds it took. The caller commits,
    then builds the indexes with `build_indexes` in a transaction of its own (an index built
    in the transaction that rewrote the rows scans every old row version too: 1.5-2x slower).

    First a SHARE ROW EXCLUSIVE lock on chunks: it waits for every transaction writing chunks
    to commit, so no chunk of this collection without its vector can arrive after the pass,
    and holds new writers until the commit, after which they see the collection out of
    bulk-load mode and compute their own. A failure leaves the collection in bulk-load mode;
    leaving again is always safe and finishes whatever is missing.
    """
    collection.bulk_load = False
    session.flush()
    session.execute(text("LOCK TABLE chunks IN SHARE ROW EXCLUSIVE MODE"))
    # Computed by a parallel query into a scratch table, then written in one pass: an UPDATE
    # alone would compute every vector in one process.
    for setting in ("max_parallel_workers_per_gather = 2", "parallel_setup_cost = 0"):
        session.execute(text(f"SET LOCAL {setting}"))
    started = time.perf_counter()
    session.execute(
        text(
            "CREATE TEMPORARY TABLE deferred_text_search ON COMMIT DROP AS"
            " SELECT id, to_tsvector(ts_config, text) AS tsv FROM chunks"
            " WHERE collection_id = :cid AND tsv IS NULL"
        ),
        {"cid": collection.id},
    )
    filled: int = session.execute(
        text(
            "WITH filled AS (UPDATE chunks SET tsv = d.tsv FROM deferred_text_search AS d"
            " WHERE chunks.id = d.id AND chunks.collection_id = :cid RETURNING 1)"
            " SELECT count(*) FROM filled"
        ),
        {"cid": collection.id},
    ).scalar_one()
    return filled, time.perf_counter() - started


def vacuum_chunks() -> None:
    """Reclaims the row versions that computing deferred text search vectors left behind.

    VACUUM cannot run in a transaction, so it gets a connection of its own. It reads only the
    pages changed since the last vacuum; indexes built afterwards scan half as many rows.
    """
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM chunks"))


def build_indexes(session: Session, collection: Collection) -> tuple[float, float | None]:
    """Builds the collection's GIN and HNSW indexes where missing; returns the seconds of each.

    Building an index once over loaded rows is far cheaper than maintaining it row by row;
    the builds get generous memory and parallel workers for this transaction only.
    """
    session.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    session.execute(text("SET LOCAL max_parallel_maintenance_workers = 2"))
    started = time.perf_counter()
    session.execute(text(text_index_ddl(collection.id).as_string()))
    text_seconds = time.perf_counter() - started
    ddl = index_ddl(collection.id, collection.dimensions)
    if ddl is None:
        return text_seconds, None
    started = time.perf_counter()
    session.execute(text(ddl.as_string()))
    return text_seconds, time.perf_counter() - started


def get_collection(session: Session, name: str) -> Collection:
    """Returns the named collection or raises a 404 ApiError."""
    collection = session.scalar(select(Collection).where(Collection.name == name))
    if collection is None:
        raise ApiError(404, "collection_not_found", f"no collection named {name!r}")
    return collection


def list_collections(session: Session) -> list[Collection]:
    """Returns every collection, by name."""
    return list(session.scalars(select(Collection).order_by(Collection.name)))


def collection_counts(session: Session, collection: Collection) -> tuple[DocumentCounts, int]:
    """Returns the collection's document counts by status and its chunk count."""
    rows = session.execute(
        select(Document.status, func.count())
        .where(Document.collection_id == collection.id)
        .group_by(Document.status)
    )
    counts = DocumentCounts(**{status: n for status, n in rows})
    # Each document's chunk_count is the number of its live chunks.
    chunks = session.scalar(
        select(func.coalesce(func.sum(Document.chunk_count), 0)).where(
            Document.collection_id == collection.id, Document.indexed_version.is_not(None)
        )
    )
    return counts, int(chunks or 0)


def delete_collection(session: Session, collection: Collection) -> None:
    """Drops the collection with its documents, chunks and index."""
    for name in (index_name(collection.id), text_index_name(collection.id)):
        session.execute(text(sql.SQL("DROP INDEX IF EXISTS {}").format(name).as_string()))
    session.execute(text("DELETE FROM chunks WHERE collection_id = :id"), {"id": collection.id})
    session.delete(collection)
