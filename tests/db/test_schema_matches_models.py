"""The models describe the migrated schema exactly, and the migrations are named in apply order.

A freshly migrated database is compared with `services.models` by Alembic's autogenerate
comparison (tables, columns and their types and nullability, indexes, unique constraints,
foreign keys). Each collection's own partition of `chunks` and its HNSW and GIN indexes are
created at run time, not by migrations, and are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData

from groundwire import migrate
from groundwire.embedded import EmbeddedPostgres
from services.db import make_engine
from services.models import Base
from services.vectors import COLLECTION_INDEX_PATTERN, COLLECTION_TABLE_PATTERN
from tests.support.databases import empty_database

VERSIONS = Path(migrate.SCRIPT_LOCATION) / "versions"


def _include(obj: Any, name: str | None, kind: str, reflected: bool, _compare: Any) -> bool:
    if kind == "index" and name is not None and re.match(COLLECTION_INDEX_PATTERN, name):
        return False  # per-collection indexes, made by collections at run time
    if kind == "table" and name is not None and re.match(COLLECTION_TABLE_PATTERN, name):
        return False  # per-collection partitions of chunks, made by collections too
    return not (kind == "table" and name == "alembic_version")


def differences(url: str, metadata: MetaData) -> list[Any]:
    """What autogenerate would change to make the database at `url` match `metadata`."""
    engine = make_engine(url, vector=False)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _include}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def migrated(postgres: EmbeddedPostgres) -> str:
    url = empty_database(postgres, "schema_vs_models")
    migrate.upgrade(url)
    return url


def test_models_match_the_migrated_schema(migrated: str) -> None:
    assert differences(migrated, Base.metadata) == []


def test_a_column_only_in_a_model_is_a_difference(migrated: str) -> None:
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["documents"].append_column(Column("priority", Integer, nullable=True))
    found = differences(migrated, metadata)
    assert [(d[0], d[2], d[3].name) for d in found] == [("add_column", "documents", "priority")]


def test_migration_files_are_named_in_apply_order() -> None:
    script = ScriptDirectory(str(migrate.SCRIPT_LOCATION))
    chain = list(reversed(list(script.walk_revisions("base", "heads"))))
    assert len(script.get_heads()) == 1, "one line of history"
    names = sorted(p.name for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert names == [f"{revision.revision}.py" for revision in chain]
    assert all(re.match(r"^\d{4}_[a-z0-9_]+\.py$", name) for name in names), names
