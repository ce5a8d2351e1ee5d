"""Does quantile matching keep a threshold's meaning when a collection changes embedding
space? SciFact (../shared/data/scifact-dev), `hash:384` → the bundled local model.

    .venv/bin/python -m bench.threshold_matching [--documents 5183] [--logged 300] [--seed 7]

Both spaces are computed in this process, as a collection would store them: each corpus entry
chunked with the space's own tokenizer and chunk size (hash: 512 tokens, local: 200, both with
an overlap of 25), every chunk embedded, and a question's best score its highest cosine over
all chunks (exact search: what the query log's `best_score` records).

A "query log" of `--logged` questions is drawn at random from the mix of claims (answerable)
and unanswerable questions; the new threshold is matched on it (services/spaces/threshold.py)
from the old space's default threshold. Reported: the grounded share of the logged questions
and of the held-out rest under the old space and threshold and under the new space and the
matched one (the target: within 5 points on the held-out questions), the rank correlation of
best scores, and coverage and false grounding under the matched threshold beside the local
model's default and the threshold `groundwire eval --calibrate` would choose (5% target).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from groundwire.evaluation import beir
from groundwire.evaluation.metrics import calibrate, operating_point
from services.embedding.hash import HashEmbedder
from services.embedding.local import LocalEmbedder
from services.spaces.threshold import match_threshold
from workers.chunking import chunk_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"
OVERLAP = 25
BATCH = 256


def space_matrix(embedder: HashEmbedder | LocalEmbedder, texts: list[str], tokens: int) -> Any:
    """The unit vectors of every chunk of `texts`."""
    chunks = [
        c.text for text in texts for c in chunk_text(text, embedder.tokenizer, tokens, OVERLAP)
    ]
    rows = [np.asarray(embedder.embed(chunks[i : i + BATCH])) for i in range(0, len(chunks), BATCH)]
    matrix = np.vstack(rows).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)


def best_scores(
    embedder: HashEmbedder | LocalEmbedder, matrix: Any, questions: list[str]
) -> list[float]:
    vectors = np.vstack(
        [
            np.asarray(embedder.embed(questions[i : i + BATCH]))
            for i in range(0, len(questions), BATCH)
        ]
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    return [float(s) for s in (vectors @ matrix.T).max(axis=1)]


def share(scores: list[float], threshold: float) -> float:
    return sum(s >= threshold for s in scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=5183)
    parser.add_argument("--logged", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs the SciFact data at {DATA}")
    data = beir.load(DATA)
    ids = list(data.corpus)[: args.documents]
    kept = set(ids)
    texts = [beir.document_text(*data.corpus[i]) for i in ids]
    claims = [
        data.queries[q] for q, rel in data.qrels.items() if q in data.queries and kept & set(rel)
    ]
    unanswerable = list(data.unanswerable.values())
    questions = claims + unanswerable
    answerable = [True] * len(claims) + [False] * len(unanswerable)

    old, new = HashEmbedder(384), LocalEmbedder()
    spaces = {}
    for label, embedder, tokens in (("hash:384", old, 512), ("local", new, 200)):
        began = time.perf_counter()
        matrix = space_matrix(embedder, texts, tokens)
        spaces[label] = best_scores(embedder, matrix, questions)
        print(
            f"{label}: {len(matrix)} chunks embedded and searched in "
            f"{time.perf_counter() - began:.0f} s"
        )
    old_best, new_best = spaces["hash:384"], spaces["local"]

    order = list(range(len(questions)))
    random.Random(args.seed).shuffle(order)
    logged, held = order[: args.logged], order[args.logged :]
    old_threshold = old.default_threshold
    matched = match_threshold(
        [old_best[i] for i in logged], [new_best[i] for i in logged], old_threshold
    )
    if matched is None:
        raise SystemExit("too few logged questions to match")
    print(
        f"\n{len(claims)} claims, {len(unanswerable)} unanswerable; "
        f"{len(logged)} logged, {len(held)} held out (seed {args.seed})"
    )
    print(
        f"old threshold {old_threshold:.3f} (hash:384 default) -> matched"
        f" {matched.threshold:.3f} (local default {new.default_threshold:.3f});"
        f" Spearman {matched.spearman:.3f}"
    )
    for label, rows in (("logged", logged), ("held out", held)):
        before = share([old_best[i] for i in rows], old_threshold)
        after = share([new_best[i] for i in rows], matched.threshold)
        print(
            f"grounded share, {label:<9} old {before:6.1%}  new {after:6.1%}  "
            f"difference {100 * (after - before):+.1f} points"
        )

    def split(scores: list[float], rows: list[int]) -> tuple[list[float], list[float]]:
        return (
            [scores[i] for i in rows if answerable[i]],
            [scores[i] for i in rows if not answerable[i]],
        )

    tune_answerable, tune_unanswerable = split(new_best, logged)
    calibrated = calibrate(tune_answerable, tune_unanswerable, 0.05).threshold
    print(f"\n{'threshold':<34} {'coverage':>9} {'false grounding':>16}  (held-out questions)")
    held_answerable, held_unanswerable = split(new_best, held)
    old_answerable, old_unanswerable = split(old_best, held)
    point = operating_point(old_answerable, old_unanswerable, old_threshold)
    print(f"{'hash:384 at its default':<34} {point.coverage:>9.1%} {point.false_grounding:>16.1%}")
    for label, threshold in (
        (f"local, query-log matched {matched.threshold:.3f}", matched.threshold),
        (f"local, eval-calibrated {calibrated:.3f}", calibrated),
        (f"local at its default {new.default_threshold:.3f}", new.default_threshold),
    ):
        point = operating_point(held_answerable, held_unanswerable, threshold)
        print(f"{label:<34} {point.coverage:>9.1%} {point.false_grounding:>16.1%}")


if __name__ == "__main__":
    main()
