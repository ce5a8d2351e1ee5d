"""An operator's ONNX cross-encoder, run in process with onnxruntime: it reads two texts
together and gives logits for the pair.

The model takes the pair as `input_ids`, `attention_mask` and, where it has one,
`token_type_ids`, and gives `[n]`, `[n, 1]` or `[n, labels]` logits: the layout of a
sentence-transformers CrossEncoder (ms-marco-MiniLM, bge-reranker, an NLI model) exported with
optimum. A run still going at the deadline is stopped through onnxruntime's terminate flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from services.local_models.folder import Manifest, model_folder

BATCH = 16  # pairs per run: bounds the memory of long passages


class RunFailed(RuntimeError):
    """The model gave no usable logits: it ran past the deadline (`timeout`) or failed."""

    def __init__(self, reason: Literal["timeout", "invalid"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CrossEncoder:
    """Scores text pairs with a cross-encoder of kind `kind` from the models folder.

    `truncate` says which text of a pair gives way when the pair is over the model's
    `max_tokens`: the passage (`second`) for a question and a passage, the passages
    (`first`) for passages and the sentence they should support.
    """

    def __init__(
        self,
        root: Path,
        name: str,
        kind: str,
        truncate: Literal["first", "second"],
        threads: int = 2,
    ) -> None:
        folder, manifest = model_folder(root, name, kind)
        self.name = f"local:{name}"
        self.manifest: Manifest = manifest
        self._model_path = folder / manifest.model
        self._tokenizer = Tokenizer.from_file(str(folder / manifest.tokenizer))
        self._tokenizer.enable_truncation(manifest.max_tokens, strategy=f"only_{truncate}")
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

    def logits(self, pairs: Sequence[tuple[str, str]], deadline: float) -> np.ndarray:
        """The model's logits for each pair, `[n, labels]`; gives up at `deadline` (a
        `time.monotonic()` value)."""
        session = self._loaded()
        inputs = {i.name for i in session.get_inputs()}
        blocks = []
        for start in range(0, len(pairs), BATCH):
            encoded = self._tokenizer.encode_batch(list(pairs[start : start + BATCH]))
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            out = self._run(session, {k: v for k, v in feed.items() if k in inputs}, deadline)
            blocks.append(_as_matrix(out, len(encoded)))
        return np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            self._session = None

    def _run(
        self, session: ort.InferenceSession, feed: dict[str, np.ndarray], deadline: float
    ) -> np.ndarray:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RunFailed("timeout", "the time budget ran out")
        options = ort.RunOptions()
        timer = threading.Timer(left, lambda: setattr(options, "terminate", True))
        timer.start()
        try:
            return np.asarray(session.run(None, feed, options)[0])
        except Exception as error:  # onnxruntime raises its own Fail for a terminated run
            if options.terminate:
                raise RunFailed("timeout", "the cross-encoder ran past the budget") from error
            raise RunFailed("invalid", f"the cross-encoder failed: {error}") from error
        finally:
            timer.cancel()


def _as_matrix(logits: np.ndarray, count: int) -> np.ndarray:
    """The model's first output as `[count, labels]`."""
    if logits.ndim == 1:
        logits = logits[:, None]
    if logits.ndim != 2 or logits.shape[0] != count:
        raise RunFailed(
            "invalid", f"the cross-encoder gives shape {list(logits.shape)}, not logits a pair"
        )
    return logits.astype(np.float32)
