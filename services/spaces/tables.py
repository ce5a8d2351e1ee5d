"""A migration's shadow space in SQL: its table, its indexes, and the swap that makes it the
collection's partition of `chunks` (and back).

The shadow table `chunks_c<collection>_m<migration>` is shaped like the collection's partition:
the same columns, keys and foreign key (deleting a document deletes its shadow chunks too), a
CHECK that every row is the collection's (so attaching it needs no scan), chunk ids from the
`chunks` sequence, and the text search trigger under a name of its own. Its HNSW and GIN
indexes are built once, when the build is done. The swap detaches the active partition,
exchanges the two tables' names and their indexes' names, and attaches the other: in the
caller's transaction, so a reader sees one space or the other, never neither.
"""

from __future__ import annotations

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.vectors import (
    hnsw_index_ddl,
    hnsw_index_name,
    partition_name,
    text_index_name,
)

SHADOW_TRIGGER = "chunks_text_search_shadow"
SWAP_LOCK_TIMEOUT = "10s"


def shadow_name(collection_id: int, migration_id: int) -> str:
    """Returns the name of a migration's table (the shadow space; after activation, the old)."""
    return f"chunks_c{int(collection_id)}_m{int(migration_id)}"


def shadow_hnsw_name(collection_id: int, migration_id: int) -> str:
    """Returns the name of the HNSW index of a migration's table."""
    return f"chunks_hnsw_c{int(collection_id)}_m{int(migration_id)}"


def shadow_text_index_name(collection_id: int, migration_id: int) -> str:
    """Returns the name of the GIN index of a migration's table."""
    return f"chunks_fts_c{int(collection_id)}_m{int(migration_id)}"


def _run(session: Session, statement: sql.Composable) -> None:
    session.execute(text(statement.as_string()))


def _only_collection(collection_id: int) -> sql.Composed:
    return sql.SQL("CHECK (collection_id = {})").format(sql.Literal(int(collection_id)))


def create_shadow(session: Session, collection_id: int, migration_id: int) -> None:
    """Creates a migration's empty shadow table, without its HNSW and GIN indexes."""
    table = sql.Identifier(shadow_name(collection_id, migration_id))
    sequence = session.execute(text("SELECT pg_get_serial_sequence('chunks', 'id')")).scalar_one()
    statements = [
        sql.SQL(
            "CREATE TABLE {t} (LIKE chunks INCLUDING DEFAULTS INCLUDING STORAGE)"
            " WITH (toast_tuple_target = 8160)"
        ),
        sql.SQL("ALTER TABLE {t} ALTER COLUMN id SET DEFAULT nextval({seq}::regclass)"),
        sql.SQL("ALTER TABLE {t} ADD CONSTRAINT {check} {only}"),
        sql.SQL("ALTER TABLE {t} ADD PRIMARY KEY (id, collection_id)"),
        sql.SQL("ALTER TABLE {t} ADD UNIQUE (document_id, ordinal, collection_id)"),
        sql.SQL(
            "ALTER TABLE {t} ADD FOREIGN KEY (collection_id, document_id)"
            " REFERENCES documents (collection_id, id) ON DELETE CASCADE"
        ),
        sql.SQL(
            "CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE OF text, ts_config ON {t}"
            " FOR EACH ROW EXECUTE FUNCTION chunks_text_search()"
        ),
    ]
    values = {
        "t": table,
        "seq": sql.Literal(str(sequence)),
        "check": sql.Identifier(f"chunks_c{int(collection_id)}_only"),
        "only": _only_collection(collection_id),
        "trigger": sql.Identifier(SHADOW_TRIGGER),
    }
    for statement in statements:
        _run(session, statement.format(**values))


def build_indexes(
    session: Session, collection_id: int, migration_id: int, dimensions: int, storage: str
) -> None:
    """Builds the shadow table's GIN and HNSW indexes (once, when its chunks are all there)."""
    table = shadow_name(collection_id, migration_id)
    _run(
        session,
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (tsv)").format(
            sql.Identifier(shadow_text_index_name(collection_id, migration_id)),
            sql.Identifier(table),
        ),
    )
    ddl = hnsw_index_ddl(
        collection_id,
        dimensions,
        storage,
        table=table,
        name=shadow_hnsw_name(collection_id, migration_id),
    )
    if ddl is not None:
        _run(session, ddl)


def drop_shadow(session: Session, collection_id: int, migration_id: int) -> None:
    """Drops a migration's table with its chunks and indexes, where it exists."""
    _run(
        session,
        sql.SQL("DROP TABLE IF EXISTS {}").format(
            sql.Identifier(shadow_name(collection_id, migration_id))
        ),
    )


def _rename(session: Session, kind: str, old: str, new: str) -> None:
    _run(
        session,
        sql.SQL("ALTER {} IF EXISTS {} RENAME TO {}").format(
            sql.SQL(kind), sql.Identifier(old), sql.Identifier(new)
        ),
    )


def _exchange(session: Session, kind: str, one: str, other: str) -> None:
    spare = f"{one}_swap"
    _rename(session, kind, one, spare)
    _rename(session, kind, other, one)
    _rename(session, kind, spare, other)


def swap(session: Session, collection_id: int, migration_id: int) -> None:
    """Makes the migration's table the collection's partition and the partition the
    migration's table, in the caller's transaction.

    Detaching takes an ACCESS EXCLUSIVE lock on `chunks` until the commit: queries of every
    collection wait for the few milliseconds the swap takes. Waiting longer than
    SWAP_LOCK_TIMEOUT for that lock (a long query holding it) fails the swap, which changes
    nothing and can be tried again.
    """
    cid = int(collection_id)
    partition, shadow = partition_name(cid), shadow_name(cid, migration_id)
    session.execute(text(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'"))
    _run(
        session, sql.SQL("ALTER TABLE chunks DETACH PARTITION {}").format(sql.Identifier(partition))
    )
    _exchange(session, "TABLE", partition, shadow)
    _exchange(session, "INDEX", hnsw_index_name(cid), shadow_hnsw_name(cid, migration_id))
    _exchange(session, "INDEX", text_index_name(cid), shadow_text_index_name(cid, migration_id))
    # The table detached now keeps the collection's rows only, checked, so attaching it back
    # needs no scan; it gets the shadow's trigger, the one attached loses it for the cloned one.
    has_check = session.execute(
        text("SELECT 1 FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND conname = :c"),
        {"t": shadow, "c": f"chunks_c{cid}_only"},
    ).first()
    values = {
        "p": sql.Identifier(partition),
        "s": sql.Identifier(shadow),
        "check": sql.Identifier(f"chunks_c{cid}_only"),
        "only": _only_collection(cid),
        "trigger": sql.Identifier(SHADOW_TRIGGER),
        "cid": sql.Literal(cid),
    }
    statements = [
        sql.SQL("DROP TRIGGER IF EXISTS {trigger} ON {p}"),
        sql.SQL(
            "CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE OF text, ts_config ON {s}"
            " FOR EACH ROW EXECUTE FUNCTION chunks_text_search()"
        ),
        sql.SQL("ALTER TABLE chunks ATTACH PARTITION {p} FOR VALUES IN ({cid})"),
    ]
    if has_check is None:
        statements.insert(0, sql.SQL("ALTER TABLE {s} ADD CONSTRAINT {check} {only}"))
    for statement in statements:
        _run(session, statement.format(**values))
