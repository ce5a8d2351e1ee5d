"""Large JSON request bodies parsed straight from the received bytes into their model.

FastAPI's own body handling keeps the raw bytes and the dict that `json.loads` made from them
for the whole request, the model's strings on top of the dict's: an admitted 60 MiB ingest
held about twice its size until the answer. Here the bytes go to `model_validate_json`
(pydantic-core builds the model's strings as it parses, no dict in between) and are dropped as
soon as it returns, so the handler holds the body once, as the model. The parse runs on the
event loop, one at a time, so concurrent requests add at most one body's parsing overhead.

`json_body_schema` puts the model back into the OpenAPI description, which no longer sees it as
a body parameter.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)

_JSON_TYPES = ("application/json", "application/merge-patch+json")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return not media or media in _JSON_TYPES or media.endswith("+json")


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency that reads the request's body and validates it as `model`."""

    async def parse(request: Request) -> M:
        content_type = request.headers.get("content-type", "")
        if not _is_json(content_type):
            raise ApiError(
                415, "unsupported_media_type", f"expected application/json, not {content_type!r}"
            )
        # The body size limit hands the whole body over as one chunk, so the join is that
        # chunk itself, not a copy; nothing on the request keeps a reference to it.
        raw = b"".join([chunk async for chunk in request.stream()])
        try:
            try:
                return model.model_validate_json(raw)
            except ValidationError as error:
                if not _surrogate_escape(error):
                    raise
            # JSON may escape a lone surrogate (\ud800), which the fast parser refuses as
            # invalid; the standard one reads it, so that the model's checks name the field
            # that cannot be stored (a rare, refused body: the extra copy does not matter).
            return model.model_validate(json.loads(raw))
        except ValidationError as error:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        except (ValueError, RecursionError):  # json.loads: not JSON, or nested past its stack
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body",)}]) from None
        finally:
            del raw

    return parse


def _surrogate_escape(error: ValidationError) -> bool:
    return any(
        e["type"] == "json_invalid" and "hex escape" in e["msg"]
        for e in error.errors(include_url=False)
    )


_BODY_MODELS: dict[str, type[BaseModel]] = {}


def json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The `openapi_extra` of a route whose body `json_body(model)` reads; `add_body_schemas`
    puts the model and the models it uses into the description's components."""
    _BODY_MODELS[model.__name__] = model
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}
    }


def add_body_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Adds the schemas of the models that `json_body_schema` named to `openapi`'s components."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _BODY_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for used, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(used, definition)
        schemas.setdefault(name, schema)
    return openapi
