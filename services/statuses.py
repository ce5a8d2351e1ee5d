"""The states a document moves through and the reasons it can fail, as Python and SQL see them.

Each enum's values are the strings stored in `documents.status`, `documents.error_class` and
`batch_items.accepted_status`; SQL binds them as parameters, and migrations that need them in
DDL (check constraints, partial indexes, views) write them from these enums.
"""

from __future__ import annotations

from enum import StrEnum


class DocumentStatus(StrEnum):
    """Where a document's latest version is: waiting, being worked on, searchable, or failed."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


# Statuses of documents still waiting for a worker.
PENDING = (DocumentStatus.QUEUED, DocumentStatus.PROCESSING)


class Acceptance(StrEnum):
    """What accepting a document did: queued a new version, or found its content unchanged."""

    QUEUED = "queued"
    UNCHANGED = "unchanged"


class FailureClass(StrEnum):
    """Why a document failed (`documents.error_class`)."""

    PARSE = "parse"
    EMBEDDING = "embedding"
    GAVE_UP = "gave_up"  # transient errors outlasted the retries, or the time or attempt limits
    INTERNAL = "internal"


def sql_list(values: tuple[StrEnum, ...] | list[StrEnum]) -> str:
    """Returns the values as a SQL list of string literals, for DDL written by migrations.

    Only for the enums' own values, which are fixed identifiers-like strings; request values
    are always bound parameters.
    """
    for value in values:
        if not value.replace("_", "").isalnum():
            raise ValueError(f"not a plain status value: {value!r}")
    return ", ".join(f"'{value}'" for value in values)
