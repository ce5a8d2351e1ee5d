"""The Embedder protocol, token span counting, and the error classes workers act on."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from services.embedding.requests import RequestLog

Vectors = npt.NDArray[np.float32]


class Spans(NamedTuple):
    """The character spans of a text's tokens, in order, as two parallel lists.

    Two lists of ints cost far less to build and to index than one tuple per token, and the
    chunker reads little more than the starts.
    """

    starts: list[int]
    ends: list[int]


class TokenSpans(Protocol):
    """Splits text into tokens, each given by its start and end character offsets."""

    def spans(self, text: str) -> Spans:
        """Returns the character spans of the tokens of `text`, in order."""
        ...


class Embedder(Protocol):
    """Turns texts into unit-length vectors of one embedding space, and declares its policy.

    `spec` is the embedder setting that built it (a collection's `embedder`, e.g. `local`);
    `space` is the embedding cache key: the model and dimensions its vectors belong to.
    """

    spec: str
    space: str
    dimensions: int
    max_input_tokens: int
    tokenizer: TokenSpans
    requests: RequestLog
    # Policy, declared by each embedder class:
    default_threshold: float  # relevance threshold of a new collection
    default_chunk_tokens: int  # chunk size of a new collection (capped by max_input_tokens)
    documents_per_task: int  # documents one ingest task takes
    batch_inputs: int  # chunk texts one embedding task carries

    def embed(self, texts: list[str]) -> Vectors:
        """Returns one L2-normalised row per text, in order; texts must be non-empty."""
        ...


class EmbeddingError(Exception):
    """An embedding request failed."""

    transient = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientEmbeddingError(EmbeddingError):
    """A failure worth retrying later: timeouts, connection errors, 5xx, rate limits."""

    transient = True


class PermanentEmbeddingError(EmbeddingError):
    """A failure that retrying will not fix: a rejected input, bad credentials, no quota."""


class ProviderNotConfigured(PermanentEmbeddingError):
    """The spec names a provider this deployment has no credentials or address for."""


def normalise(matrix: Vectors) -> Vectors:
    """Returns `matrix` with each row scaled to unit L2 length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


def require_non_empty(texts: list[str]) -> None:
    """Raises when a text is blank: a zero vector would make cosine distance NaN."""
    for i, text in enumerate(texts):
        if not text.strip():
            raise PermanentEmbeddingError(f"input {i} is empty; empty chunks are never embedded")
