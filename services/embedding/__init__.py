"""Embedders behind one interface: bundled local model, OpenAI-compatible provider, hash."""

from services.embedding.base import (
    Embedder,
    EmbeddingError,
    PermanentEmbeddingError,
    ProviderNotConfigured,
    TokenSpans,
    TransientEmbeddingError,
    Vectors,
)
from services.embedding.registry import (
    EmbedderRegistry,
    UnknownEmbedder,
    parse_embedder_spec,
)

__all__ = [
    "Embedder",
    "EmbedderRegistry",
    "EmbeddingError",
    "PermanentEmbeddingError",
    "ProviderNotConfigured",
    "TokenSpans",
    "TransientEmbeddingError",
    "UnknownEmbedder",
    "Vectors",
    "parse_embedder_spec",
]
