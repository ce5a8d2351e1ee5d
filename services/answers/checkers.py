"""The ways of scoring whether a sentence is supported by the passages it cites, side by side
(docs/answers.md measures them):

- `lexical` (the default): the calibrated logistic model of lexical evidence, and optionally
  the local embedder's similarity (services/answers/support.py); no model call.
- `judge`: the chat model asked once more, for every cited sentence of an answer at once,
  how likely its passages state it. A judge that fails or answers out of form leaves the
  lexical score, so a flaky judge never fails an answer.
- `local:<name>`: an operator's ONNX cross-encoder of kind `support` from the models folder
  (an NLI or hallucination-detection model), reading the passages and the sentence together.

Each gives a score in [0, 1] a sentence, and its threshold: GROUNDWIRE_SUPPORT_THRESHOLD when
set, else the lexical model's calibrated one, 0.5 for the judge, the manifest's for a model.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from services.answers.chat import ChatModel, ContextTooLong
from services.answers.support import SupportModel, features
from services.api.errors import ApiError
from services.config import Settings
from services.local_models.cross_encoder import CrossEncoder, RunFailed
from services.local_models.folder import local_model_name

log = logging.getLogger(__name__)

Embed = Callable[[list[str]], np.ndarray]
# A sentence and the texts of the passages it cites.
Claim = tuple[str, list[str]]
JUDGE_THRESHOLD = 0.5
# Characters of cited passages the judge is shown a sentence (the prompt stays bounded).
JUDGE_PASSAGE_CHARS = 6000
SUPPORT_BUDGET_S = 30.0  # a local support model's time for one answer's sentences


class SupportChecker(Protocol):
    """Scores claims; `threshold` is the score under which a sentence is unsupported."""

    @property
    def name(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    def scores(self, claims: Sequence[Claim]) -> list[float]: ...


@dataclass
class Lexical:
    """The calibrated lexical model (and the embedder's similarity where it weighs it)."""

    model: SupportModel
    embed: Embed | None = None
    name: str = "lexical"

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def scores(self, claims: Sequence[Claim]) -> list[float]:
        return [self.model.score(features(s, passages, self.embed)) for s, passages in claims]


JUDGE_SYSTEM = (
    "You check whether passages support sentences. For each numbered sentence, give the"
    " probability, from 0 to 1, that its passages state what the sentence says: 1 when they"
    " say it, 0 when they do not or say otherwise. Judge from the passages only, never from"
    ' what you know. Reply with JSON only: {"scores": [one number per sentence, in order]}.'
)


def judge_messages(claims: Sequence[Claim]) -> list[dict[str, str]]:
    """The judge's prompt: every sentence with the passages it cites."""
    blocks = []
    for i, (sentence, passages) in enumerate(claims, start=1):
        cited = "\n\n".join(passages)[:JUDGE_PASSAGE_CHARS]
        blocks.append(f"Sentence {i}: {sentence}\nIts passages:\n{cited}")
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": "\n\n---\n\n".join(blocks)},
    ]


_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_judgement(text: str, count: int) -> list[float] | None:
    """The judge's scores, or None when its answer is not `count` probabilities."""
    found = _JSON_OBJECT.search(text)
    if found is None:
        return None
    try:
        scores = json.loads(found.group(0)).get("scores")
    except (ValueError, AttributeError):
        return None
    if not isinstance(scores, list) or len(scores) != count:
        return None
    values = []
    for score in scores:
        if isinstance(score, bool):
            score = float(score)
        if not isinstance(score, int | float) or not 0.0 <= score <= 1.0:
            return None
        values.append(float(score))
    return values


@dataclass
class Judge:
    """The chat model as a judge: one call for all of an answer's cited sentences."""

    chat: ChatModel
    model: str
    fallback: Lexical
    threshold: float = JUDGE_THRESHOLD
    name: str = "judge"
    prompt_tokens: int = field(default=0, init=False)
    completion_tokens: int = field(default=0, init=False)

    def scores(self, claims: Sequence[Claim]) -> list[float]:
        if not claims:
            return []
        try:
            said = self.chat.complete(self.model, judge_messages(claims))
        except (ApiError, ContextTooLong) as error:
            log.warning("the support judge failed (%s): lexical scores stand", error)
            return self._fallback(claims)
        self.prompt_tokens += said.prompt_tokens
        self.completion_tokens += said.completion_tokens
        scores = parse_judgement(said.text, len(claims))
        if scores is None:
            log.warning(
                "the support judge's answer is not %d scores: lexical ones stand", len(claims)
            )
            return self._fallback(claims)
        return scores

    def _fallback(self, claims: Sequence[Claim]) -> list[float]:
        """The lexical scores, moved onto the judge's threshold (so `supported` means what
        the lexical model says)."""
        lexical, own = self.fallback.scores(claims), self.fallback.threshold
        return [_rescale(s, own, self.threshold) for s in lexical]


def _rescale(score: float, old: float, new: float) -> float:
    """Maps [0, old) to [0, new) and [old, 1] to [new, 1], keeping which side a score is on."""
    if score < old:
        return score / old * new if old > 0 else 0.0
    return new + (score - old) / (1 - old) * (1 - new) if old < 1 else 1.0


class SupportModelFile:
    """An operator's cross-encoder of kind `support`: (passages, sentence) → entailment."""

    def __init__(
        self, root: Path, name: str, threads: int = 2, threshold: float | None = None
    ) -> None:
        self.model = CrossEncoder(root, name, "support", truncate="first", threads=threads)
        self.name = self.model.name
        manifest = self.model.manifest
        labels = manifest.labels
        if labels is not None and manifest.entailment_label not in labels:
            raise ValueError(
                f"model {name!r}: entailment_label {manifest.entailment_label!r} is not one of"
                f" its labels {labels}"
            )
        self._entailed = labels.index(manifest.entailment_label) if labels else None
        self.threshold = threshold if threshold is not None else manifest.threshold

    def scores(self, claims: Sequence[Claim]) -> list[float]:
        pairs = [("\n\n".join(passages), sentence) for sentence, passages in claims]
        if not pairs:
            return []
        try:
            logits = self.model.logits(pairs, time.monotonic() + SUPPORT_BUDGET_S)
        except RunFailed as error:
            raise ApiError(502, "support_model_failed", f"{self.name}: {error}") from error
        return [self._probability(row) for row in logits]

    def _probability(self, row: np.ndarray) -> float:
        if row.shape[0] == 1:
            return 1.0 / (1.0 + math.exp(-float(row[0])))
        if self._entailed is None or row.shape[0] != len(self.model.manifest.labels or []):
            raise ApiError(
                502,
                "support_model_failed",
                f"{self.name} gives {row.shape[0]} logits; its manifest names no such labels",
            )
        exp = np.exp(row - row.max())
        return float(exp[self._entailed] / exp.sum())

    def close(self) -> None:
        self.model.close()


def load_support_model(settings: Settings) -> SupportModelFile | None:
    """The operator's support model that GROUNDWIRE_SUPPORT_CHECK names, checked (its
    folder, manifest and sha256) so a wrong one stops the API at start; None for the others."""
    name = local_model_name(settings.support_check)
    if name is None:
        return None
    return SupportModelFile(
        settings.models_folder(),
        name,
        settings.local_threads,
        settings.support_threshold,
    )


def support_checker(
    settings: Settings,
    chat: Callable[[], ChatModel],
    answer_model: str,
    embedder: Callable[[], Embed],
    local: SupportModelFile | None,
) -> SupportChecker:
    """The checker GROUNDWIRE_SUPPORT_CHECK names, for one answer by `answer_model`
    (`embedder` gives the local embedder, asked for only where the lexical model weighs
    similarity)."""
    model = SupportModel.default()
    embed = embedder() if model.uses_similarity else None
    if settings.support_check == "judge":
        threshold = settings.support_threshold
        return Judge(
            chat(),
            settings.support_judge_model or answer_model,
            Lexical(model, embed),
            JUDGE_THRESHOLD if threshold is None else threshold,
        )
    if local is not None:
        return local
    if settings.support_threshold is not None:
        model = replace(model, threshold=settings.support_threshold)
    return Lexical(model, embed)
