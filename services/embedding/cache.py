"""The embedding cache: `(embedding space, sha256 of a text) -> vector`, shared by every
collection, document and migration, so a text is embedded once per space."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import LargeBinary, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from services.embedding.base import Embedder, Vectors
from services.models import EmbeddingCacheEntry

# One array parameter each, so every batch size runs the same prepared statement.
_CACHED = select(EmbeddingCacheEntry.content_hash, EmbeddingCacheEntry.embedding).where(
    EmbeddingCacheEntry.space == bindparam("space"),
    EmbeddingCacheEntry.content_hash == any_(bindparam("hashes", type_=ARRAY(LargeBinary))),
)


def cached_vectors(session: Session, space: str, hashes: Sequence[bytes]) -> dict[bytes, Vectors]:
    """Returns the cached vector of each hash that `space` already has."""
    if not hashes:
        return {}
    rows = session.execute(_CACHED, {"space": space, "hashes": list(set(hashes))})
    return {bytes(h): as_array(v) for h, v in rows}


def remember_vectors(session: Session, space: str, vectors: Mapping[bytes, Vectors]) -> None:
    """Adds newly computed vectors to the embedding cache; entries already there are kept."""
    if not vectors:
        return
    session.execute(
        insert(EmbeddingCacheEntry).on_conflict_do_nothing(),
        [{"space": space, "content_hash": h, "embedding": v} for h, v in vectors.items()],
    )


def as_array(value: Any) -> Vectors:
    """Returns a pgvector value (a `Vector` from the binary loader, or an array) as float32."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


def text_hash(text: str) -> bytes:
    """The cache key of a text (the same as a chunk's content hash)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def embed_cached(session: Session, embedder: Embedder, texts: Sequence[str]) -> list[Vectors]:
    """Embeds `texts` in the embedder's space, taking what the cache has and keeping the rest
    there (in the caller's transaction)."""
    keys = [text_hash(t) for t in texts]
    known = cached_vectors(session, embedder.space, keys)
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in known}
    if missing:
        fresh = dict(zip(missing, embedder.embed(list(missing.values())), strict=True))
        remember_vectors(session, embedder.space, fresh)
        known.update(fresh)
    return [known[k] for k in keys]
