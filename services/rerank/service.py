"""The rerank stage: which reranker a process has, whether a request uses it, and the
reordering itself (a pure function), with the retrieval order kept when the reranker fails
or runs past its budget."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from services.api.errors import ApiError
from services.config import Settings
from services.local_models.folder import local_model_name
from services.metrics import RERANKS
from services.query.candidates import Candidate
from services.rerank.base import Reranker, RerankError
from services.rerank.http_api import HttpReranker
from services.rerank.onnx_model import OnnxCrossEncoder

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Candidate)


@dataclass(frozen=True)
class RerankStage:
    """A process's reranker, its time budget and how many passages it reorders."""

    reranker: Reranker
    budget_s: float
    depth: int


def build_stage(settings: Settings) -> RerankStage | None:
    """The rerank stage the settings configure, or None. A local model's folder is checked
    here, so a wrong one stops the process at start (ModelFolderError), not at a query."""
    reranker: Reranker
    if settings.rerank_url:
        key = settings.rerank_api_key.get_secret_value() if settings.rerank_api_key else None
        reranker = HttpReranker(
            settings.rerank_url, settings.rerank_format, settings.rerank_model, key
        )
    elif (name := local_model_name(settings.rerank_model)) is not None:
        reranker = OnnxCrossEncoder(settings.models_folder(), name, settings.local_threads)
    elif settings.rerank_model:
        raise ValueError(
            "GROUNDWIRE_RERANK_MODEL names a model of the rerank API: set GROUNDWIRE_RERANK_URL,"
            " or use local:<name> for a cross-encoder in the models folder"
        )
    else:
        return None
    return RerankStage(reranker, settings.rerank_budget_ms / 1000, settings.rerank_depth)


def chosen(
    stage: RerankStage | None, asked: bool | None, collection_default: bool
) -> RerankStage | None:
    """The stage a request runs: its own `rerank`, else the collection's default. Asking for
    it where none is configured is refused; a collection default without one is skipped."""
    if asked is None:
        return stage if collection_default else None
    if asked and stage is None:
        raise not_configured()
    return stage if asked else None


def not_configured() -> ApiError:
    """The refusal of a rerank where the server has no reranker."""
    return ApiError(
        422,
        "rerank_not_configured",
        "no reranker is configured on this server (GROUNDWIRE_RERANK_URL or"
        " GROUNDWIRE_RERANK_MODEL=local:<name>)",
    )


def reorder(passages: Sequence[C], scores: Sequence[float]) -> list[C]:
    """The first len(scores) passages ordered by score (ties keep their retrieval order), each
    with its `rerank_score`, then the rest as they were."""
    head = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranked = [replace(passages[i], rerank_score=scores[i]) for i in head]
    return ranked + list(passages[len(scores) :])


def rerank(stage: RerankStage, query: str, passages: Sequence[C]) -> tuple[list[C], bool]:
    """Reorders the top `depth` passages; on failure or timeout returns them unchanged.
    The second value says whether they were reranked."""
    head = passages[: stage.depth]
    if len(head) < 2:
        return list(passages), False
    started = time.perf_counter()
    try:
        scores = stage.reranker.scores(
            query, [p.text for p in head], time.monotonic() + stage.budget_s
        )
    except RerankError as error:
        RERANKS.labels(error.reason).observe(time.perf_counter() - started)
        log.warning("rerank skipped (%s): %s", error.reason, error)
        return list(passages), False
    RERANKS.labels("reranked").observe(time.perf_counter() - started)
    return reorder(passages, scores), True
