"""What every fault scenario must end with, read with SQL: six counts at zero (lost documents,
failures without a reason, duplicate chunks, chunks of another version, orphan chunks, done
documents missing chunks), with the documents and failures for the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg

COUNTS = """
SELECT
  (SELECT count(*) FROM documents
    WHERE collection_id = %(c)s AND status NOT IN ('done', 'failed')) AS lost,
  (SELECT count(*) FROM documents
    WHERE collection_id = %(c)s AND status = 'failed'
      AND (error IS NULL OR error_class IS NULL)) AS failed_without_reason,
  (SELECT coalesce(sum(n - 1), 0) FROM (
      SELECT count(*) AS n FROM chunks WHERE collection_id = %(c)s
      GROUP BY document_id, ordinal HAVING count(*) > 1) AS twice) AS duplicates,
  (SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id
    WHERE c.collection_id = %(c)s
      AND c.doc_version IS DISTINCT FROM d.indexed_version) AS mixed,
  (SELECT count(*) FROM chunks c LEFT JOIN documents d ON d.id = c.document_id
    WHERE c.collection_id = %(c)s
      AND (d.id IS NULL OR d.collection_id <> c.collection_id)) AS orphans,
  (SELECT count(*) FROM documents d
    WHERE d.collection_id = %(c)s AND d.status = 'done'
      AND d.chunk_count <> (SELECT count(*) FROM chunks c WHERE c.document_id = d.id))
    AS incomplete,
  (SELECT count(*) FROM documents WHERE collection_id = %(c)s) AS documents,
  (SELECT count(*) FROM documents WHERE collection_id = %(c)s AND status = 'failed') AS failed
"""


@dataclass(frozen=True)
class Counts:
    """What a scenario left behind in one collection."""

    lost: int
    failed_without_reason: int
    duplicates: int
    mixed: int
    orphans: int
    incomplete: int
    documents: int
    failed: int

    def violations(self) -> dict[str, int]:
        """The counts that must be zero and are not."""
        bad = asdict(self)
        for name in ("documents", "failed"):
            bad.pop(name)
        return {name: value for name, value in bad.items() if value}


def counts(database_url: str, collection_id: int) -> Counts:
    """Reads the counts for one collection in one snapshot."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(COUNTS, {"c": collection_id}).fetchone()
    assert row is not None
    return Counts(*(int(v) for v in row))


def settled(database_url: str, collection_id: int) -> bool:
    """True when no document of the collection waits or is being processed."""
    return counts(database_url, collection_id).lost == 0
