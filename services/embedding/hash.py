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
import numpy.typing as npt

from services.embedding.base import Spans, TokenSpans, Vectors, normalise, require_non_empty
from services.embedding.requests import RequestLog, RequestOutcome, RequestRecord, Timer

_WORD = re.compile(r"\w+")
_WORD_CHAR = re.compile(r"\w")
_SPACE_CHAR = re.compile(r"\s")
_PUNCT, _WORDISH, _SPACE = 0, 1, 2
_STOPWORD_TEXT = (
    "a an and are as at be by do does for from has have how i in is it its of on or that the "
    "this to was were what when where which who why will with you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _char_class(char: str) -> int:
    """The class of one character, as Python's regular expressions see it."""
    if _WORD_CHAR.match(char):
        return _WORDISH
    return _SPACE if _SPACE_CHAR.match(char) else _PUNCT


_ASCII_CLASSES = np.array([_char_class(chr(code)) for code in range(128)], dtype=np.uint8)
# UTF-8 bytes to split words at: every ASCII byte that is not a word character becomes a space
# (bytes from 0x80 up are parts of non-ASCII characters and stay).
_WORD_BYTES = bytes(
    code if code >= 128 or _ASCII_CLASSES[code] == _WORDISH else 32 for code in range(256)
)


def _char_classes(text: str) -> npt.NDArray[np.uint8]:
    """The class of every character of `text`: a table for ASCII, the regex for the rest."""
    if text.isascii():
        return _ASCII_CLASSES[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ascii_chars = codes < 128
    classes = np.empty(codes.size, dtype=np.uint8)
    classes[ascii_chars] = _ASCII_CLASSES[codes[ascii_chars]]
    others, where = np.unique(codes[~ascii_chars], return_inverse=True)
    table = np.array([_char_class(chr(code)) for code in others.tolist()], dtype=np.uint8)
    classes[~ascii_chars] = table[where]
    return classes


class RegexTokenizer:
    """Words (runs of `\\w`) and single punctuation marks as tokens: `\\w+|[^\\w\\s]`.

    The spans come from array operations over character classes rather than one match
    object per token, which made this tokenizer 15% of a worker's time on the load corpus.
    """

    def spans(self, text: str) -> Spans:
        """Returns the span of each word or punctuation mark."""
        if not text:
            return Spans([], [])
        classes = _char_classes(text)
        edges = np.diff((classes == _WORDISH).view(np.int8), prepend=0, append=0)
        word_starts, word_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        marks = np.flatnonzero(classes == _PUNCT)
        if marks.size == 0:
            return Spans(word_starts.tolist(), word_ends.tolist())
        starts = np.concatenate((word_starts, marks))
        order = np.argsort(starts, kind="stable")
        ends = np.concatenate((word_ends, marks + 1))
        return Spans(starts[order].tolist(), ends[order].tolist())


class HashEmbedder:
    """Feature hashing of words into `dimensions` buckets."""

    spec = "hash"
    default_threshold = 0.3
    default_chunk_tokens = 512
    max_input_tokens = 8192

    def __init__(
        self, dimensions: int = 256, *, batch_inputs: int = 1024, documents_per_task: int = 32
    ) -> None:
        self.dimensions = dimensions
        self.documents_per_task = documents_per_task
        self.spec = "hash" if dimensions == 256 else f"hash:{dimensions}"
        self.space = f"hash:v1:{dimensions}"
        self.tokenizer: TokenSpans = RegexTokenizer()
        self.batch_inputs = batch_inputs
        self.requests = RequestLog()
        self._buckets = _Buckets(dimensions)

    def embed(self, texts: list[str]) -> Vectors:
        """Returns one normalised hashed bag-of-words vector per text."""
        require_non_empty(texts)
        timer = Timer()
        dimensions = self.dimensions
        out = np.zeros((len(texts), dimensions), dtype=np.float32)
        tokens = 0
        lookup = self._buckets.__getitem__  # a C loop over the words; misses fill the dict
        for row, text in enumerate(texts):
            lowered = text.lower()
            # Stopwords land in one extra bucket, past the end, which is then cut off.
            words = _words(lowered)
            found = np.fromiter(map(lookup, words), dtype=np.intp, count=len(words))
            counts = np.bincount(found, minlength=dimensions + 1)
            features = len(words) - int(counts[dimensions])
            if features:
                out[row] = counts[:dimensions]
            else:  # no word but stopwords: the whole text is the one feature
                out[row, _bucket(lowered.strip(), dimensions)] = 1.0
            tokens += features or 1
        self.requests.add(
            RequestRecord(timer.started, len(texts), tokens, timer.ms(), RequestOutcome.OK)
        )
        return normalise(out)


def _words(lowered: str) -> list[str] | list[bytes]:
    """The words of a lower-cased text, as `\\w+` finds them, as UTF-8 bytes.

    Every character that is not a word character becomes a space, then the UTF-8 bytes are
    split: three times faster than the regular expression, which was half of this embedder's
    time. Bytes from 0x80 up belong to non-ASCII characters, all of them word characters
    once the others are replaced. A bucket is the hash of a word's UTF-8 bytes either way.
    """
    if not lowered.isascii():
        for char in _non_word_characters(lowered):
            lowered = lowered.replace(char, " ")
        try:
            data = lowered.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            return _WORD.findall(lowered)
        return data.translate(_WORD_BYTES).split()
    return lowered.encode("ascii").translate(_WORD_BYTES).split()


_NON_ASCII_WORD: dict[str, bool] = {}


def _non_word_characters(text: str) -> list[str]:
    """The distinct non-ASCII characters of `text` that are not word characters."""
    found = []
    for char in set(text):
        if char > "\x7f":
            word = _NON_ASCII_WORD.get(char)
            if word is None:
                word = _NON_ASCII_WORD[char] = _WORD_CHAR.match(char) is not None
            if not word:
                found.append(char)
    return found


class _Buckets(dict[str | bytes, int]):
    """Word to bucket, filled on first sight; stopwords map to `dimensions` (no bucket)."""

    MAX_WORDS = 1 << 20

    def __init__(self, dimensions: int) -> None:
        super().__init__(dict.fromkeys(_STOPWORDS, dimensions))
        self.update(dict.fromkeys((word.encode("ascii") for word in _STOPWORDS), dimensions))
        self.dimensions = dimensions

    def __missing__(self, word: str | bytes) -> int:
        bucket = _bucket(word, self.dimensions)
        if len(self) < self.MAX_WORDS:
            self[word] = bucket
        return bucket


@lru_cache(maxsize=1 << 16)
def _bucket(feature: str | bytes, dimensions: int) -> int:
    """The bucket of one feature (UTF-8): BLAKE2b, so the same on every machine."""
    data = feature if isinstance(feature, bytes) else feature.encode("utf-8", "replace")
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(digest, "little") % dimensions
