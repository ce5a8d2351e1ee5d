"""Throughput of the bundled local model: chunks/s by thread count and batch size.

    .venv/bin/python -m bench.local_embedder [--chunks 96]

Chunks are ~200-word-piece passages of real text (SciFact abstracts when ../shared/data is
present, else generated sentences), the size the `local` collections use by default.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from services.embedding.local import LocalEmbedder
from workers.chunking import chunk_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev" / "corpus.jsonl"


def passages(count: int, embedder: LocalEmbedder) -> list[str]:
    """Returns `count` passages of about 200 word pieces."""
    if CORPUS.exists():
        lines = CORPUS.read_text().splitlines()[: count * 2]
        text = "\n\n".join(json.loads(line)["text"] for line in lines)
    else:
        text = " ".join(
            f"Sentence {i} describes a measurement of protein levels." for i in range(20 * count)
        )
    chunks = [c.text for c in chunk_text(text, embedder.tokenizer, 200, 0)]
    return (chunks * (count // max(1, len(chunks)) + 1))[:count]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'threads':>7} {'batch':>5} {'chunks/s (median)':>18}")
    for threads in (1, 2):
        for batch in (1, 8, 16):
            embedder = LocalEmbedder(threads=threads, batch_size=batch)
            texts = passages(args.chunks, embedder)
            embedder.embed(texts[:batch])  # load the model outside the timing
            rates = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                embedder.embed(texts)
                rates.append(len(texts) / (time.perf_counter() - started))
            print(f"{threads:>7} {batch:>5} {statistics.median(rates):>18.1f}")


if __name__ == "__main__":
    main()
