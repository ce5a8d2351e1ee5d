"""Small ONNX cross-encoders for the rerank tests, in the layout of an exported
sentence-transformers CrossEncoder (inputs input_ids, attention_mask, token_type_ids; one
logit a pair), written to a models folder with a manifest.

`word_counter` scores a pair by how often one word piece occurs in the passage (token type 1):
its order is known in advance. `slow` adds a chain of large matrix products that depends on
the input (so it cannot be folded away when the session loads), for the budget's timeout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from services.embedding.local import TOKENIZER_PATH
from services.local_models.folder import sha256_of

SLOW_SIZE = 2048
SLOW_PRODUCTS = 24


def word_counter(
    root: Path,
    name: str,
    word: str,
    *,
    slow: bool = False,
    kind: str = "reranker",
    bias: float = 0.0,
    labels: list[str] | None = None,
) -> Path:
    """Writes model `name` under `root`: a pair's logit is the count of `word` in its second
    text, plus `bias`. With `labels` (a `support` model like an NLI one), that logit is the
    `entailment` label's and the others are 0."""
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    token = tokenizer.token_to_id(word)
    assert token is not None, f"{word!r} is not one word piece"
    vocab = tokenizer.get_vocab_size()
    weights = np.zeros((vocab, 1), dtype=np.float32)
    weights[token, 0] = 1.0
    ids = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "length"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    nodes = [
        helper.make_node("Gather", ["weights", "input_ids"], ["hits3"]),
        helper.make_node("Squeeze", ["hits3", "axis2"], ["hits"]),
        helper.make_node("Cast", ["token_type_ids"], ["second"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["hits", "second"], ["counted"]),
        helper.make_node("ReduceSum", ["counted", "axis1"], ["count"], keepdims=1),
        helper.make_node("Add", ["count", "bias"], ["logits"]),
    ]
    initializers = [
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(bias, dtype=np.float32), "bias"),
    ]
    output = "logits"
    width: int = 1
    if labels:
        entailed = labels.index("entailment")
        initializers.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "none"))
        nodes.append(helper.make_node("Mul", ["logits", "none"], ["zeros"]))
        columns = ["logits" if i == entailed else "zeros" for i in range(len(labels))]
        nodes.append(helper.make_node("Concat", columns, ["label_logits"], axis=1))
        output, width = "label_logits", len(labels)
    if slow:
        rng = np.random.default_rng(3)
        matrix = (rng.standard_normal((SLOW_SIZE, SLOW_SIZE)) / SLOW_SIZE).astype(np.float32)
        initializers += [
            numpy_helper.from_array(matrix, "matrix"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ]
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["mask"], ["total"], keepdims=0),
            helper.make_node("Mul", ["matrix", "total"], ["product0"]),
        ]
        for i in range(SLOW_PRODUCTS):
            nodes.append(helper.make_node("MatMul", [f"product{i}", "matrix"], [f"product{i + 1}"]))
        nodes += [
            helper.make_node("ReduceSum", [f"product{SLOW_PRODUCTS}"], ["spent"], keepdims=0),
            helper.make_node("Mul", ["spent", "zero"], ["nothing"]),
            helper.make_node("Add", ["logits", "nothing"], ["slow_logits"]),
        ]
        output = "slow_logits"
    graph = helper.make_graph(
        nodes,
        name,
        ids,
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    shutil.copyfile(TOKENIZER_PATH, folder / "tokenizer.json")
    manifest: dict[str, object] = {
        "kind": kind,
        "max_tokens": 256,
        "sha256": {f: sha256_of(folder / f) for f in ("model.onnx", "tokenizer.json")},
        "license": "apache-2.0",
    }
    if labels:
        manifest["labels"] = labels
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder
