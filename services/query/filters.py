"""Metadata filters: a small JSON language compiled into bound SQL over `documents.metadata`.

    {"team": "hr"}                                  equality (shorthand)
    {"team": {"$eq": "hr"}}  {"team": {"$ne": "hr"}}
    {"lang": {"$in": ["en", "de"]}}                  any of the values
    {"year": {"$gte": 2020, "$lt": 2024}}            numeric range (numbers only)
    {"date": {"$gte": "2024-01-01"}}                 date range (ISO 8601 strings compare as text)
    {"reviewed": {"$exists": true}}
    {"$and": [...]}  {"$or": [...]}  {"$not": {...}}

Keys and values are always bound parameters; only operators chosen from a fixed table shape
the SQL text. A malformed filter raises FilterError with a message that says what is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

MAX_DEPTH = 8
MAX_CLAUSES = 64
MAX_IN_VALUES = 1024
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_SCALAR = (str, int, float, bool)


class FilterError(ValueError):
    """The filter is malformed; the message says where and why."""


@dataclass
class _Compiler:
    column: sql.Composable
    params: dict[str, Any] = field(default_factory=dict)
    clauses: int = 0

    def bind(self, value: Any) -> sql.Composable:
        name = f"filter_{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def node(self, spec: Any, path: str, depth: int) -> sql.Composable:
        if depth > MAX_DEPTH:
            raise FilterError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if not isinstance(spec, dict) or not spec:
            raise FilterError(f"{path}: expected a non-empty object")
        parts = [self.entry(key, value, f"{path}.{key}", depth) for key, value in spec.items()]
        return parts[0] if len(parts) == 1 else sql.SQL("({})").format(sql.SQL(" AND ").join(parts))

    def entry(self, key: str, value: Any, path: str, depth: int) -> sql.Composable:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise FilterError(f"filter has more than {MAX_CLAUSES} clauses")
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"{path}: expected a non-empty list of filters")
            parts = [self.node(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
            joiner = " AND " if key == "$and" else " OR "
            return sql.SQL("({})").format(sql.SQL(joiner).join(parts))
        if key == "$not":
            return sql.SQL("(NOT {})").format(self.node(value, path, depth + 1))
        if key.startswith("$"):
            raise FilterError(f"{path}: unknown operator {key!r}")
        if not key:
            raise FilterError(f"{path}: empty metadata key")
        if isinstance(value, dict):
            if not value:
                raise FilterError(f"{path}: expected at least one operator")
            return sql.SQL("({})").format(
                sql.SQL(" AND ").join(
                    self.condition(key, op, arg, path) for op, arg in value.items()
                )
            )
        return self.condition(key, "$eq", value, path)

    def condition(self, key: str, op: str, arg: Any, path: str) -> sql.Composable:
        column = self.column
        if op in ("$eq", "$ne"):
            if not isinstance(arg, _SCALAR) and arg is not None:
                raise FilterError(f"{path}.{op}: expected a string, number, boolean or null")
            test = sql.SQL("{} @> {}::jsonb").format(column, self.bind(json.dumps({key: arg})))
            return test if op == "$eq" else sql.SQL("NOT ({})").format(test)
        if op == "$in":
            if not isinstance(arg, list) or not arg or len(arg) > MAX_IN_VALUES:
                raise FilterError(f"{path}.$in: expected a list of 1 to {MAX_IN_VALUES} values")
            if not all(isinstance(v, _SCALAR) for v in arg):
                raise FilterError(f"{path}.$in: values must be strings, numbers or booleans")
            docs = [json.dumps({key: v}) for v in arg]
            return sql.SQL("{} @> ANY({}::jsonb[])").format(column, self.bind(docs))
        if op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"{path}.$exists: expected true or false")
            test = sql.SQL("{} ? {}").format(column, self.bind(key))
            return test if arg else sql.SQL("NOT ({})").format(test)
        if op in _RANGE:
            comparison, bound_key = sql.SQL(_RANGE[op]), self.bind(key)
            if isinstance(arg, int | float) and not isinstance(arg, bool):
                return sql.SQL(
                    "(CASE WHEN jsonb_typeof({c} -> {k}) = 'number'"
                    " THEN ({c} ->> {k})::numeric END {cmp} CAST({v} AS numeric))"
                ).format(c=column, k=bound_key, cmp=comparison, v=self.bind(arg))
                # numeric on both sides: a float bound would turn the comparison into double
                # precision, which a stored number of 400 digits overflows (for every row).
            if isinstance(arg, str) and _ISO_DATE.match(arg):
                return sql.SQL(
                    "(CASE WHEN jsonb_typeof({c} -> {k}) = 'string' THEN {c} ->> {k} END {cmp} {v})"
                ).format(c=column, k=bound_key, cmp=comparison, v=self.bind(arg))
            raise FilterError(f"{path}.{op}: expected a number or an ISO 8601 date string")
        raise FilterError(f"{path}: unknown operator {op!r}")


def compile_filter(spec: Any, column: sql.Composable) -> tuple[sql.Composable, dict[str, Any]]:
    """Returns a boolean SQL expression over the jsonb `column` and its bound parameters."""
    compiler = _Compiler(column)
    return compiler.node(spec, "filter", 0), compiler.params
