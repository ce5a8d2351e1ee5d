"""Resolves an embedder spec (`local`, `hash`, `openai:<model>`) to one instance per process."""

from __future__ import annotations

import threading

from services.config import get_settings
from services.embedding.base import Embedder
from services.embedding.hash import HashEmbedder

DEFAULT_SPEC = "local"
_instances: dict[str, Embedder] = {}
_lock = threading.Lock()


class UnknownEmbedder(ValueError):
    """The spec names no embedder Groundwire knows."""


def parse_embedder_spec(spec: str) -> tuple[str, str | None]:
    """Splits a spec into (kind, model) and rejects unknown kinds."""
    kind, _, model = spec.partition(":")
    if kind in ("local", "hash") and not model:
        return kind, None
    if kind == "hash" and model.isdigit() and 16 <= int(model) <= 2000:
        return kind, model  # the hash embedder with that many dimensions
    if kind == "openai" and model.strip():
        return kind, model.strip()
    raise UnknownEmbedder(
        f"unknown embedder {spec!r}: use 'local' (default), 'hash', 'hash:<16-2000 dimensions>'"
        " or 'openai:<model>'"
    )


def _build(spec: str, dimensions: int | None) -> Embedder:
    kind, model = parse_embedder_spec(spec)
    settings = get_settings()
    if kind == "hash":
        return HashEmbedder(int(model or 256), batch_inputs=settings.hash_batch_inputs)
    if kind == "local":
        from services.embedding.local import LocalEmbedder

        return LocalEmbedder(
            threads=settings.local_threads,
            batch_size=settings.local_batch_size,
            batch_inputs=settings.local_batch_inputs,
        )
    from services.embedding.openai_provider import OpenAIEmbedder

    assert model is not None
    return OpenAIEmbedder(model, settings, dimensions=dimensions)


def get_embedder(spec: str, dimensions: int | None = None) -> Embedder:
    """Returns the process-wide embedder for `spec`, building it on first use.

    `dimensions`, when the caller knows them (a collection records its space's), spares a
    provider-backed embedder the request that would discover them.
    """
    with _lock:
        if spec not in _instances:
            _instances[spec] = _build(spec, dimensions)
        return _instances[spec]


def clear_embedders() -> None:
    """Forgets built embedders (after a fork, or when settings change in tests)."""
    with _lock:
        _instances.clear()
