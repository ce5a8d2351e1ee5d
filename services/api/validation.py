"""Checks that text and JSON from clients can be stored faithfully in PostgreSQL."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_JSON_DEPTH = 32


def text_problem(value: str) -> str | None:
    """Returns why `value` cannot be stored as PostgreSQL text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which PostgreSQL text cannot store"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not valid Unicode"
    return None


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Returns why a JSON value cannot be stored as jsonb, or None when it can."""
    if depth > MAX_JSON_DEPTH:
        return f"is nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "contains a number that is not finite"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) or json_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for item in value:
            problem = json_problem(item, depth + 1)
            if problem:
                return problem
    return None


def json_size(value: Any) -> int:
    """Returns the size in bytes of `value` serialised compactly."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def storable(value: str) -> str:
    """A pydantic check: `value` must be text PostgreSQL can store (no NUL, no lone surrogate)."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Request text that reaches the database: refused with a 422 and the reason when it cannot.
StorableText = Annotated[str, AfterValidator(storable)]
