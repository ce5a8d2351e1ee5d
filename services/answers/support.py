"""Whether a sentence is supported by the passages it cites: a score in [0, 1].

No entailment model ships its weights in a package that loads offline, so the score combines
evidence that can be computed here, calibrated on labelled pairs (docs/answers.md says on
what, with the precision and recall it reaches):

- `content`: the share of the sentence's content words (stop words out, light stemming) that
  the cited passages contain;
- `numbers`: whether every number the sentence states appears in them (1 when it has none);
- `names`: the share of its capitalised words (names, past the first word) they contain;
- `negation`: 1 when the sentence negates (not, no, never, …) and the passages never do;
- `negation_shift`: 1 when the sentence and the passage sentence most like it (most content
  words in common) differ in negating: a "not" added or dropped;
- `similarity`: the cosine similarity, under the local embedder, of the sentence and the most
  similar sentence of the passages (0 when no embedder is given).

A logistic model of these features gives the score; `SupportModel.default()` holds the
calibrated weights and threshold. Everything here is a pure function but `similarity`, which
takes the embedding function it is given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+(?:[.,]\d+)*%?")  # words of any script
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nothing",
        "neither",
        "nor",
        "cannot",
        "without",
        "n't",
        "nobody",
        "nowhere",
        "lack",
        "lacks",
    ]
)
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "may",
        "might",
        "must",
        "shall",
        "per",
        "via",
        "within",
        "upon",
        "across",
        "among",
        "however",
        "thus",
        "therefore",
        "also",
        "each",
        "every",
        "many",
        "much",
    ]
)
FEATURES = ("content", "numbers", "names", "negation", "negation_shift", "similarity")

Embed = Callable[[list[str]], np.ndarray]


def _stem(word: str) -> str:
    word = word.lower().strip("'-")
    for suffix in ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ed", "es", "s", "ly"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _number(raw: str) -> str:
    """A number as written, in one form: no thousands commas, no trailing decimal zeros."""
    value = raw.replace(",", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value or "0"


def _numbers(text: str) -> set[str]:
    return {_number(n) for n in _NUMBER.findall(text)}


def _content(words: Sequence[str]) -> set[str]:
    return {_stem(w) for w in words if w.lower() not in STOP_WORDS and not w[0].isdigit()}


def _negates(words: Sequence[str]) -> bool:
    return any(w.lower() in _NEGATIONS or w.lower().endswith("n't") for w in words)


def _negation_shift(words: Sequence[str], content: set[str], evidence: str) -> float:
    """1 when the sentence and the passage sentence it most resembles (most content words in
    common) differ in negating: a "not" added, or one dropped."""
    best, aligned = 0, None
    for candidate in _SENTENCE_END.split(evidence):
        found = _WORD.findall(candidate)
        shared = len(content & _content(found))
        if shared > best:
            best, aligned = shared, found
    if aligned is None:
        return 0.0
    return 1.0 if _negates(words) != _negates(aligned) else 0.0


def features(
    sentence: str, passages: Sequence[str], embed: Embed | None = None
) -> dict[str, float]:
    """The evidence that `passages` support `sentence` (see the module's docstring)."""
    words = _WORD.findall(sentence)
    evidence = " ".join(passages)
    found = _WORD.findall(evidence)
    content = _content(words)
    known = _content(found)
    numbers = _numbers(sentence)
    names = {_stem(w) for w in words[1:] if w[0].isupper() and w.lower() not in STOP_WORDS}
    values = {
        "content": len(content & known) / len(content) if content else 1.0,
        "numbers": 1.0 if numbers <= _numbers(evidence) else 0.0,
        "names": len(names & known) / len(names) if names else 1.0,
        "negation": 1.0 if _negates(words) and not _negates(found) else 0.0,
        "negation_shift": _negation_shift(words, content, evidence),
        "similarity": 0.0,
    }
    if embed is not None and evidence.strip():
        candidates = [s for s in _SENTENCE_END.split(evidence) if s.strip()][:200]
        vectors = embed([sentence, *candidates])
        values["similarity"] = float(np.max(vectors[1:] @ vectors[0]))
    return values


@dataclass(frozen=True)
class SupportModel:
    """A logistic model of the features: the score, and the threshold under which a
    sentence is unsupported."""

    weights: dict[str, float]
    bias: float
    threshold: float

    @classmethod
    def default(cls) -> SupportModel:
        """The calibrated model: lexical evidence alone (bench/support_calibration.py
        --target-precision 0.92, docs/answers.md): on held-out pairs, precision 0.927 and
        recall 0.756 for "unsupported" at 0.6 ms a sentence. With the embedder's similarity
        it catches 4 points more of the unsupported at 1.4 points less precision and costs
        about 100 ms a sentence, so similarity is left out by default."""
        return cls(
            weights={
                "content": 3.836,
                "numbers": 4.61,
                "names": 3.386,
                "negation": -0.745,
                "negation_shift": -4.089,
                "similarity": 0.0,
            },
            bias=-10.422,
            threshold=0.666,
        )

    @property
    def uses_similarity(self) -> bool:
        """Whether the score needs the embedder."""
        return self.weights.get("similarity", 0.0) != 0.0

    def score(self, values: dict[str, float]) -> float:
        """The probability that the passages support the sentence."""
        z = self.bias + sum(self.weights[name] * values[name] for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-z))
