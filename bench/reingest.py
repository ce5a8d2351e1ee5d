"""Re-ingest: the unchanged corpus again, then with 5% of documents edited, against the first
ingest: wall time and chunks sent to the embedder. Runs against a running service.

    .venv/bin/groundwire up --port 8100 --data-dir /tmp/gw-bench &
    GROUNDWIRE_DATA_DIR=/tmp/gw-bench .venv/bin/python -m bench.reingest \
        --url http://127.0.0.1:8100 [--documents 1000]

The corpus is SciFact (../shared/data/scifact-dev/corpus.jsonl). An edit rewrites one sentence
in the middle of the document, as a person correcting a paragraph would.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from groundwire.client import connect
from services.config import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev" / "corpus.jsonl"


def load(count: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()[:count]]
    return [
        {"id": str(r["id"]), "title": r["title"], "text": f"{r['title']}\n\n{r['text']}"}
        for r in rows
    ]


def edit(text: str, rng: random.Random) -> str:
    sentences = text.split(". ")
    i = len(sentences) // 2
    sentences[i] = f"This sentence was revised on review {rng.randint(0, 10**9)}"
    return ". ".join(sentences)


def run(client: httpx.Client, collection: str, docs: list[dict[str, Any]]) -> dict[str, float]:
    started = time.perf_counter()
    batches = []
    for start in range(0, len(docs), 500):
        body = {"documents": docs[start : start + 500]}
        response = client.post(f"/v1/collections/{collection}/documents", json=body)
        response.raise_for_status()
        batches.append(response.json()["batch_id"])
    while True:
        states = [client.get(f"/v1/batches/{b}").json() for b in batches]
        if all(s["finished"] for s in states):
            break
        time.sleep(0.2)
    return {
        "seconds": time.perf_counter() - started,
        "embedded": sum(s["embedded_chunks"] for s in states),
        "cached": sum(s["cached_chunks"] for s in states),
        "queued": sum(s["total"] - s["unchanged"] for s in states),
        "failed": sum(s["failed"] for s in states),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--embedder", default="local")
    parser.add_argument("--edited-share", type=float, default=0.05)
    args = parser.parse_args()
    rng = random.Random(5)
    docs = load(args.documents)
    name = f"reingest-{uuid.uuid4().hex[:6]}"
    with connect(args.url, Settings(), timeout=300) as client:
        client.post(
            "/v1/collections", json={"name": name, "embedder": args.embedder}
        ).raise_for_status()
        first = run(client, name, docs)
        chunks = client.get(f"/v1/collections/{name}").json()["chunks"]
        unchanged = run(client, name, docs)
        edited_ids = set(rng.sample([d["id"] for d in docs], int(len(docs) * args.edited_share)))
        revised = [dict(d, text=edit(d["text"], rng)) if d["id"] in edited_ids else d for d in docs]
        edited = run(client, name, revised)
    print(f"{len(docs)} documents, {chunks} chunks, embedder {args.embedder}")
    print(
        f"{'run':<22} {'seconds':>8} {'vs first':>9} {'docs queued':>12}"
        f" {'chunks embedded':>16} {'share':>7}"
    )
    for label, r in (
        ("first ingest", first),
        ("unchanged re-ingest", unchanged),
        (f"{args.edited_share:.0%} edited", edited),
    ):
        print(
            f"{label:<22} {r['seconds']:>8.2f} {r['seconds'] / first['seconds']:>8.1%} "
            f"{int(r['queued']):>12} {int(r['embedded']):>16} {r['embedded'] / chunks:>7.1%}"
        )
    assert first["failed"] == unchanged["failed"] == edited["failed"] == 0


if __name__ == "__main__":
    main()
