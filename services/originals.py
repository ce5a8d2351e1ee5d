"""Originals: uploaded files kept content-addressed in PostgreSQL, written and read 1 MiB at a
time, in the transaction of the documents that use them.

Identical bytes are stored once per workspace. `keep` locks the original's row (or makes it),
so a document deleted meanwhile cannot take it away between here and the commit; the
`documents_original_references` trigger counts the documents that use it and deletes it with
the last (migrations/versions/0013_originals.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from sqlalchemy.orm import Session

from services.db import driver_connection

PART_BYTES = 1024 * 1024

_KEEP = (
    "INSERT INTO originals AS o (workspace_id, sha256, bytes) VALUES (%s, %s, %s)"
    " ON CONFLICT ON CONSTRAINT originals_workspace_sha256 DO UPDATE SET bytes = o.bytes"
    " RETURNING o.id, (o.xmax = 0)"
)
_PART = "INSERT INTO original_parts (original_id, part, data) VALUES (%s, %s, %s)"
_READ = "SELECT data FROM original_parts WHERE original_id = %s AND part = %s"


def keep(session: Session, workspace_id: int, sha256: bytes, size: int, spool: IO[bytes]) -> int:
    """Returns the id of the original with these bytes, storing them from `spool` if new."""
    with driver_connection(session).cursor() as cursor:
        cursor.execute(_KEEP, (workspace_id, sha256, size))
        row = cursor.fetchone()
        assert row is not None
        original_id, inserted = int(row[0]), bool(row[1])
        if inserted:
            spool.seek(0)
            part = 0
            while data := spool.read(PART_BYTES):
                cursor.execute(_PART, (original_id, part, data))
                part += 1
    return original_id


def read_part(session: Session, original_id: int, part: int) -> bytes | None:
    """Part `part` of an original, or None past its end (or when it is gone)."""
    with driver_connection(session).cursor() as cursor:
        cursor.execute(_READ, (original_id, part))
        row = cursor.fetchone()
    return bytes(row[0]) if row is not None else None


def read_parts(session: Session, original_id: int) -> Iterator[bytes]:
    """Yields an original's bytes a part at a time (one query each: never all in memory)."""
    part = 0
    while (data := read_part(session, original_id, part)) is not None:
        yield data
        part += 1


def read_into(session: Session, original_id: int, target: IO[bytes]) -> int:
    """Writes an original's bytes to `target`; returns how many."""
    size = 0
    for data in read_parts(session, original_id):
        target.write(data)
        size += len(data)
    return size
