"""A reranker from the models folder: an ONNX cross-encoder giving one logit a (question,
passage) pair (services/local_models/cross_encoder.py runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from services.local_models.cross_encoder import CrossEncoder, RunFailed
from services.rerank.base import RerankError


class OnnxCrossEncoder:
    """Scores passages against a question with an operator's cross-encoder."""

    def __init__(self, root: Path, name: str, threads: int = 2) -> None:
        self._model = CrossEncoder(root, name, "reranker", truncate="second", threads=threads)
        self.name = self._model.name

    def scores(self, query: str, texts: Sequence[str], deadline: float) -> list[float]:
        try:
            logits = self._model.logits([(query, text) for text in texts], deadline)
        except RunFailed as error:
            raise RerankError(error.reason, str(error)) from error
        if logits.shape[1] != 1:
            raise RerankError(
                "invalid", f"the cross-encoder gives {logits.shape[1]} logits a pair, not one"
            )
        return [float(v) for v in logits[:, 0]]

    def close(self) -> None:
        self._model.close()
