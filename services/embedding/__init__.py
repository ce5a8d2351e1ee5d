"""Embedders behind one interface: bundled local model, OpenAI-compatible provider, hash."""

from services.embedding.base import (
    Embedder,
    EmbeddingError,
    PermanentEmbeddingError,
    TokenSpans,
    TransientEmbeddingError,
)
from services.embedding.registry import UnknownEmbedder, get_embedder, parse_embedder_spec

__all__ = [
    "Embedder",
    "EmbeddingError",
    "PermanentEmbeddingError",
    "TokenSpans",
    "TransientEmbeddingError",
    "UnknownEmbedder",
    "get_embedder",
    "parse_embedder_spec",
]
