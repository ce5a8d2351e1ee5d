"""Creating, listing and dropping collections, with their per-collection indexes, and the
bulk-load mode that defers those indexes during large initial loads. Never commits, except
`finish_bulk_load`, which owns its transactions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.access.caller import AccessDenied, Caller
from services.api.errors import ApiError
from services.collections.schemas import CollectionCreate, DocumentCounts
from services.db import Database
from services.embedding import (
    Embedder,
    EmbeddingError,
    PermanentEmbeddingError,
    ProviderNotConfigured,
    UnknownEmbedder,
)
from services.models import Collection, Document, SpaceMigration, Workspace
from services.runtime import Runtime
from services.spaces.build import open_migration
from services.spaces.tables import drop_shadow
from services.vectors import (
    drop_index_ddl,
    drop_partition_ddl,
    hnsw_index_ddl,
    partition_ddl,
    partition_name,
    text_index_ddl,
)


def resolve_embedding(
    runtime: Runtime, spec: str, chunk_tokens: int | None, chunk_overlap: int | None
) -> tuple[Embedder, int, int]:
    """Builds the embedder `spec` names and settles the chunking for it (unset values get its
    defaults); raises ApiError on an embedder or chunking that cannot work."""
    try:
        embedder = runtime.embedders.get(spec)
    except UnknownEmbedder as error:
        raise ApiError(422, "unknown_embedder", str(error)) from error
    except ProviderNotConfigured as error:
        raise ApiError(422, "provider_not_configured", str(error)) from error
    except PermanentEmbeddingError as error:  # say, a model the provider does not have
        raise ApiError(422, "embedder_rejected", str(error)) from error
    except EmbeddingError as error:
        raise ApiError(
            503, "embedder_unavailable", str(error), headers={"Retry-After": "30"}
        ) from error
    tokens = chunk_tokens or min(embedder.max_input_tokens, embedder.default_chunk_tokens)
    if tokens > embedder.max_input_tokens:
        raise ApiError(
            422,
            "invalid_request",
            f"chunk_tokens {tokens} exceeds the embedder's maximum input of "
            f"{embedder.max_input_tokens} tokens",
        )
    overlap = chunk_overlap if chunk_overlap is not None else tokens // 8
    if overlap >= tokens:
        raise ApiError(422, "invalid_request", "chunk_overlap must be below chunk_tokens")
    return embedder, tokens, overlap


def create_collection(
    session: Session, runtime: Runtime, caller: Caller, body: CollectionCreate
) -> Collection:
    """Creates a collection of the caller's workspace with its indexes; raises ApiError on bad
    settings, a name the workspace has, or a full quota."""
    if not caller.sees_collection(body.name):
        raise AccessDenied("this key is limited to other collections")
    quota = session.scalar(
        select(Workspace.collection_quota).where(Workspace.id == caller.workspace_id)
    )
    limit = quota if quota is not None else runtime.settings.workspace_collection_quota
    # Serialises creations in one workspace, so two at once cannot both take the last place.
    session.execute(
        select(Workspace.id).where(Workspace.id == caller.workspace_id).with_for_update()
    )
    existing = session.scalar(
        select(func.count())
        .select_from(Collection)
        .where(Collection.workspace_id == caller.workspace_id)
    )
    if int(existing or 0) >= limit:
        raise ApiError(
            409, "collection_quota_exceeded", f"the workspace already has its {limit} collections"
        )
    embedder, chunk_tokens, overlap = resolve_embedding(
        runtime, body.embedder, body.chunk_tokens, body.chunk_overlap
    )
    known_language = session.execute(
        text("SELECT 1 FROM pg_ts_config WHERE cfgname = :name"), {"name": body.language}
    ).first()
    if known_language is None:
        raise ApiError(
            422, "invalid_request", f"unknown text search configuration {body.language!r}"
        )
    collection = Collection(
        workspace_id=caller.workspace_id,
        name=body.name,
        embedder=body.embedder,
        dimensions=embedder.dimensions,
        max_input_tokens=embedder.max_input_tokens,
        chunk_tokens=chunk_tokens,
        chunk_overlap=overlap,
        threshold=body.threshold if body.threshold is not None else embedder.default_threshold,
        language=body.language,
        bulk_load=body.bulk_load,
        vector_storage=body.vector_storage,
    )
    session.add(collection)
    try:
        session.flush()
    except IntegrityError as error:
        raise ApiError(409, "conflict", f"collection {body.name!r} already exists") from error
    session.execute(text(partition_ddl(collection.id).as_string()))
    if not collection.bulk_load:  # in bulk-load mode both are built when the load is done
        _create_indexes(session, collection)
    return collection


def _create_indexes(session: Session, collection: Collection) -> None:
    session.execute(text(text_index_ddl(collection.id).as_string()))
    ddl = hnsw_index_ddl(collection.id, collection.dimensions, collection.vector_storage)
    if ddl is not None:
        session.execute(text(ddl.as_string()))


def _drop_indexes(session: Session, collection: Collection) -> None:
    for statement in drop_index_ddl(collection.id):
        session.execute(text(statement.as_string()))


def enter_bulk_load(session: Session, collection: Collection) -> None:
    """Puts the collection in bulk-load mode: its indexes go, and text search is deferred.

    In bulk-load mode the collection has no HNSW and no GIN index, and its new chunks are
    written without their text search vector (the `chunks_text_search` trigger leaves it
    NULL): computing it is most of what writing a chunk costs the database, which every
    worker shares. Meanwhile vector search is exact (a scan), and keyword search sees only
    the chunks written before the mode was entered. Not while a migration of the collection
    is open: its shadow space would miss the text search vectors the mode defers.
    """
    building = open_migration(session, collection)
    if building is not None:
        raise ApiError(
            409,
            "migration_in_progress",
            f"migration {building.id} of this collection is open: activate or delete it first",
        )
    collection.bulk_load = True
    _drop_indexes(session, collection)


@dataclass(frozen=True)
class BulkLoadFinished:
    """What leaving bulk-load mode did, and how long each part took."""

    text_vectors_computed: int
    text_search_seconds: float
    index_build_seconds: float | None


def finish_bulk_load(database: Database, collection_id: int) -> BulkLoadFinished:
    """Takes a collection out of bulk-load mode: computes its deferred text search vectors,
    reclaims the rows that rewrote, and builds its GIN and HNSW indexes.

    Three transactions, each committed here: leaving the mode with the vectors; VACUUM (which
    cannot run in one); the index builds (an index built in the transaction that rewrote the
    rows scans every old row version too: 1.5-2x slower). A failure at any point leaves
    something that leaving again finishes: the mode is off only once every vector is there,
    and the builds create only what is missing.
    """
    with database.scope() as session:
        collection = session.get_one(Collection, collection_id)
        vectors, fill_seconds = _leave_bulk_load(session, collection)
    if vectors:
        started = time.perf_counter()
        vacuum = sql.SQL("VACUUM {}").format(sql.Identifier(partition_name(collection_id)))
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(vacuum.as_string()))
        fill_seconds += time.perf_counter() - started
    with database.scope() as session:
        collection = session.get_one(Collection, collection_id)
        text_index_seconds, index_seconds = _build_indexes(session, collection)
    return BulkLoadFinished(vectors, fill_seconds + text_index_seconds, index_seconds)


def _leave_bulk_load(session: Session, collection: Collection) -> tuple[int, float]:
    """Takes the collection out of bulk-load mode and computes its deferred text search vectors.

    Returns how many chunks got their vector, and the seconds it took. First a SHARE ROW
    EXCLUSIVE lock on the collection's partition: it waits for every transaction writing its
    chunks to commit, so no chunk of this collection without its vector can arrive after the
    pass, and holds new writers until the commit, after which they see the collection out of
    bulk-load mode and compute their own. Other collections' writers never wait.
    """
    collection.bulk_load = False
    session.flush()
    lock = sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
        sql.Identifier(partition_name(collection.id))
    )
    session.execute(text(lock.as_string()))
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


def _build_indexes(session: Session, collection: Collection) -> tuple[float, float | None]:
    """Builds the collection's GIN and HNSW indexes where missing; returns the seconds of each.

    Building an index once over loaded rows is far cheaper than maintaining it row by row;
    the builds get generous memory and parallel workers for this transaction only.
    """
    session.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    session.execute(text("SET LOCAL max_parallel_maintenance_workers = 2"))
    started = time.perf_counter()
    session.execute(text(text_index_ddl(collection.id).as_string()))
    text_seconds = time.perf_counter() - started
    ddl = hnsw_index_ddl(collection.id, collection.dimensions, collection.vector_storage)
    if ddl is None:
        return text_seconds, None
    started = time.perf_counter()
    session.execute(text(ddl.as_string()))
    return text_seconds, time.perf_counter() - started


def list_collections(session: Session, caller: Caller) -> list[Collection]:
    """Returns the collections of the caller's workspace that its key reaches, by name."""
    query = select(Collection).where(Collection.workspace_id == caller.workspace_id)
    if caller.collections is not None:
        query = query.where(Collection.name.in_(sorted(caller.collections)))
    return list(session.scalars(query.order_by(Collection.name)))


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


def collection_size(session: Session, collection: Collection) -> int:
    """Bytes on disk: the chunks partition with its indexes and TOAST, and the documents
    table's share by rows (estimated from its statistics, not counted row by row)."""
    size = session.execute(
        text(
            "WITH n AS (SELECT count(*)::float8 AS mine FROM documents"
            " WHERE collection_id = :id),"
            " t AS (SELECT greatest(1, reltuples)::float8 AS rows FROM pg_class"
            " WHERE oid = 'documents'::regclass)"
            " SELECT coalesce(pg_total_relation_size(to_regclass(:partition)), 0)"
            " + pg_total_relation_size('documents') * least(1, n.mine / greatest(n.mine, t.rows))"
            " FROM n, t"
        ),
        {"partition": partition_name(collection.id), "id": collection.id},
    ).scalar()
    return int(size or 0)


def delete_collection(session: Session, collection: Collection) -> None:
    """Drops the collection with its documents, its partition with its chunks and indexes,
    and the tables of its migrations."""
    session.execute(text(drop_partition_ddl(collection.id).as_string()))
    kept = session.scalars(
        select(SpaceMigration.id).where(
            SpaceMigration.collection_id == collection.id, SpaceMigration.dropped_at.is_(None)
        )
    )
    for migration_id in kept.all():
        drop_shadow(session, collection.id, migration_id)
    session.delete(collection)
