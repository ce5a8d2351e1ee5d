"""An operator's ONNX cross-encoder, run in process with onnxruntime.

The model takes a (query, passage) pair as `input_ids`, `attention_mask` and, where it has
one, `token_type_ids`, and gives one relevance logit per pair (shape [n] or [n, 1]): the
layout of a sentence-transformers CrossEncoder (ms-marco-MiniLM, bge-reranker) exported with
optimum. A run still going at the deadline is stopped through onnxruntime's terminate flag.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from services.rerank.base import RerankError, remaining
from services.rerank.models_folder import model_folder

BATCH = 16  # pairs per run: bounds the memory of long passages


class OnnxCrossEncoder:
    """Scores (query, passage) pairs with a cross-encoder from the models folder."""

    def __init__(self, root: Path, name: str, threads: int = 2) -> None:
        folder, manifest = model_folder(root, name, "reranker")
        self.name = f"local:{name}"
        self._model_path = folder / manifest.model
        self._tokenizer = Tokenizer.from_file(str(folder / manifest.tokenizer))
        self._tokenizer.enable_truncation(manifest.max_tokens, strategy="only_second")
        self._tokenizer.enable_padding()
        self._threads = threads
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> ort.InferenceSession:
        """The session, created on first use (never in a parent process before a fork)."""
        with self._lock:
            if self._session is None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                self._session = ort.InferenceSession(
                    str(self._model_path), options, providers=["CPUExecutionProvider"]
                )
            return self._session

    def scores(self, query: str, texts: Sequence[str], deadline: float) -> list[float]:
        session = self._loaded()
        inputs = {i.name for i in session.get_inputs()}
        scores: list[float] = []
        for start in range(0, len(texts), BATCH):
            pairs = [(query, text) for text in texts[start : start + BATCH]]
            encoded = self._tokenizer.encode_batch(pairs)
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            logits = self._run(session, {k: v for k, v in feed.items() if k in inputs}, deadline)
            scores.extend(_pair_scores(logits, len(pairs)))
        return scores

    def close(self) -> None:
        with self._lock:
            self._session = None

    def _run(
        self, session: ort.InferenceSession, feed: dict[str, np.ndarray], deadline: float
    ) -> np.ndarray:
        options = ort.RunOptions()
        timer = threading.Timer(remaining(deadline), lambda: setattr(options, "terminate", True))
        timer.start()
        try:
            return np.asarray(session.run(None, feed, options)[0])
        except Exception as error:  # onnxruntime raises its own Fail for a terminated run
            if options.terminate:
                raise RerankError("timeout", "the cross-encoder ran past the budget") from error
            raise RerankError("invalid", f"the cross-encoder failed: {error}") from error
        finally:
            timer.cancel()


def _pair_scores(logits: np.ndarray, count: int) -> list[float]:
    """One score per pair from the model's first output ([n] or [n, 1])."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.shape != (count,):
        raise RerankError(
            "invalid", f"the cross-encoder gives shape {list(logits.shape)}, not one logit a pair"
        )
    return [float(v) for v in logits]
