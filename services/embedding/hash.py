"""A deterministic feature-hashing embedder for development and tests, useless for real retrieval.

Each lower-cased word is hashed with BLAKE2b (stable across machines and Python versions,
unlike the salted built-in `hash()`) into one of `dimensions` buckets; counts are never
negative, so no text maps to the zero vector (which would make cosine distance NaN).
Texts that share words score high, anything else near zero: enough to exercise the
pipeline, not to find paraphrases.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np

from services.embedding.base import TokenSpans, Vectors, normalise, require_non_empty
from services.embedding.requests import OK, RequestLog, RequestRecord, Timer

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_STOPWORD_TEXT = (
    "a an and are as at be by do does for from has have how i in is it its of on or that the "
    "this to was were what when where which who why will with you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class RegexTokenizer:
    """Words and single punctuation marks as tokens."""

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Returns the span of each word or punctuation mark."""
        return [m.span() for m in _TOKEN.finditer(text)]


class HashEmbedder:
    """Feature hashing of words into `dimensions` buckets."""

    spec = "hash"
    default_threshold = 0.3
    max_input_tokens = 8192

    def __init__(self, dimensions: int = 256, *, batch_inputs: int = 1024) -> None:
        self.dimensions = dimensions
        self.spec = "hash" if dimensions == 256 else f"hash:{dimensions}"
        self.space = f"hash:v1:{dimensions}"
        self.tokenizer: TokenSpans = RegexTokenizer()
        self.batch_inputs = batch_inputs
        self.requests = RequestLog()

    def _features(self, text: str) -> list[str]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        return words or [text.strip().lower()]

    def embed(self, texts: list[str]) -> Vectors:
        """Returns one normalised hashed bag-of-words vector per text."""
        require_non_empty(texts)
        timer = Timer()
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        tokens = 0
        for row, text in enumerate(texts):
            buckets = [_bucket(feature, self.dimensions) for feature in self._features(text)]
            tokens += len(buckets)
            np.add.at(out[row], buckets, 1.0)
        self.requests.add(RequestRecord(timer.started, len(texts), tokens, timer.ms(), OK))
        return normalise(out)


@lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dimensions: int) -> int:
    """The bucket of one feature: BLAKE2b, so the same on every machine; cached per process."""
    digest = hashlib.blake2b(feature.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % dimensions
