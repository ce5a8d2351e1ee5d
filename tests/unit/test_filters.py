"""Metadata filters compile to bound SQL; malformed ones say what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import sql

from services.query.filters import FilterError, compile_filter

COLUMN = sql.SQL("d.metadata")


def test_values_and_keys_are_bound_never_inlined() -> None:
    spec = {"team'; DROP TABLE chunks; --": "x' OR 1=1", "year": {"$gte": 2020}}
    expression, params = compile_filter(spec, COLUMN)
    text = expression.as_string()
    assert "DROP" not in text and "1=1" not in text
    assert "year" not in text and "2020" not in text
    assert any("DROP TABLE" in str(v) for v in params.values())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "non-empty object"),
        ({"a": {"$regex": "x"}}, "unknown operator '$regex'"),
        ({"$xor": []}, "unknown operator '$xor'"),
        ({"a": {"$in": "x"}}, "$in: expected a list"),
        ({"a": {"$in": [{"nested": 1}]}}, "$in: values must be"),
        ({"a": {"$gt": "yesterday"}}, "ISO 8601"),
        ({"a": {"$exists": "yes"}}, "$exists: expected true or false"),
        ({"a": {"$eq": [1, 2]}}, "expected a string, number, boolean or null"),
        ({"$or": []}, "non-empty list"),
        ({"a": {}}, "at least one operator"),
    ],
)
def test_malformed_filters_are_explained(spec: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("$", r"\$").replace("(", r"\(")):
        compile_filter(spec, COLUMN)


def test_depth_and_size_are_bounded() -> None:
    deep: Any = {"a": 1}
    for _ in range(10):
        deep = {"$and": [deep]}
    with pytest.raises(FilterError, match="deeper"):
        compile_filter(deep, COLUMN)
    with pytest.raises(FilterError, match="more than"):
        compile_filter({f"k{i}": i for i in range(100)}, COLUMN)
