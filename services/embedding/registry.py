"""Resolves an embedder spec (`local`, `hash`, `openai:<model>`) to one instance per registry.

A process builds one registry from its settings at start and hands it down; the embedders it
builds are kept for the life of the registry (the local model loads once per process).
"""

from __future__ import annotations

import threading

from services.config import Settings
from services.embedding.base import Embedder
from services.embedding.hash import HashEmbedder
from services.embedding.local import LocalEmbedder

DEFAULT_SPEC = "local"


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


class EmbedderRegistry:
    """The embedders of one process, built from its settings on first use of each spec."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[str, Embedder] = {}
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get(self, spec: str, dimensions: int | None = None) -> Embedder:
        """Returns the embedder for `spec`, building it on first use.

        `dimensions`, when the caller knows them (a collection records its space's), spares a
        provider-backed embedder the request that would discover them.
        """
        # Building may ask the provider (an unknown model's dimensions): only callers of the
        # same spec wait for that, never a query of another collection.
        found = self._instances.get(spec)
        if found is not None:
            return found
        with self._lock:
            building = self._building.setdefault(spec, threading.Lock())
        with building:
            if spec not in self._instances:
                self._instances[spec] = self._build(spec, dimensions)
            return self._instances[spec]

    def _build(self, spec: str, dimensions: int | None) -> Embedder:
        kind, model = parse_embedder_spec(spec)
        settings = self.settings
        if kind == "hash":
            return HashEmbedder(
                int(model or 256),
                batch_inputs=settings.hash_batch_inputs,
                documents_per_task=settings.ingest_batch_documents,
            )
        if kind == "local":
            return LocalEmbedder(
                threads=settings.local_threads,
                batch_size=settings.local_batch_size,
                batch_inputs=settings.local_batch_inputs,
                documents_per_task=settings.ingest_batch_documents,
            )
        assert model is not None
        # Imported here: the `openai` client takes a second to import, and a process that
        # never meets an `openai:` collection (an API on the embedded default) needs none.
        from services.embedding.openai_provider import OpenAIEmbedder

        return OpenAIEmbedder(model, settings, dimensions=dimensions)
