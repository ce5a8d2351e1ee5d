"""Against a running service: time for 100 Markdown documents to be `done`, then query latency.

    .venv/bin/groundwire up &            # or scripts/dev up
    .venv/bin/python -m bench.service_smoke [--url http://127.0.0.1:8000] [--embedder local]

Prints the ingest wall time, p50/p95 query latency over 100 questions through HTTP, and checks
that a question about the documents is grounded and an unrelated one is not.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from groundwire.client import connect
from services.config import Settings

TOPICS = [
    ("glaciers", "Glaciers carve U-shaped valleys as compacted ice flows slowly downhill."),
    ("photosynthesis", "Plants turn sunlight, water and carbon dioxide into sugar and oxygen."),
    ("tcp", "TCP retransmits lost segments and uses a sliding window for flow control."),
    ("bread", "Yeast ferments dough, and kneading develops the gluten that traps the gas."),
    ("tides", "The moon's gravity raises two ocean bulges, giving two high tides a day."),
]


def markdown(i: int) -> str:
    name, fact = TOPICS[i % len(TOPICS)]
    return (
        f"# Note {i} on {name}\n\n{fact}\n\n## Details\n\n"
        + " ".join(f"Observation {j} of note {i} adds detail about {name}." for j in range(12))
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--embedder", default="local")
    args = parser.parse_args()
    name = f"smoke-{uuid.uuid4().hex[:6]}"
    with connect(args.url, Settings(), timeout=120) as client:
        client.post(
            "/v1/collections", json={"name": name, "embedder": args.embedder}
        ).raise_for_status()
        docs = [{"id": f"note-{i}", "title": f"Note {i}", "text": markdown(i)} for i in range(100)]
        started = time.perf_counter()
        accepted = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
        accepted.raise_for_status()
        batch_id = accepted.json()["batch_id"]
        while not (batch := client.get(f"/v1/batches/{batch_id}").json())["finished"]:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        detail = client.get(f"/v1/collections/{name}").json()
        print(
            f"100 documents ({detail['chunks']} chunks): {batch['done']} done, "
            f"{batch['failed']} failed in {elapsed:.1f} s"
        )

        questions = [f"How do {TOPICS[i % 5][0]} work? ({i})" for i in range(100)]
        latencies = []
        for question in questions:
            t0 = time.perf_counter()
            client.post(
                f"/v1/collections/{name}/query", json={"query": question}
            ).raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
        cuts = statistics.quantiles(latencies, n=20)
        print(
            f"query latency over 100 queries: p50 {statistics.median(latencies):.1f} ms, "
            f"p95 {cuts[18]:.1f} ms"
        )
        about = client.post(
            f"/v1/collections/{name}/query", json={"query": "How do glaciers carve valleys?"}
        ).json()
        unrelated = client.post(
            f"/v1/collections/{name}/query", json={"query": "Who won the 1966 football World Cup?"}
        ).json()
        top = about["results"][0]["document_id"] if about["results"] else None
        print(
            f"on-topic question: grounded={about['grounded']} top={top} "
            f"score={about['best_score']:.3f}"
        )
        print(
            f"unrelated question: grounded={unrelated['grounded']} "
            f"best={unrelated['best_score']:.3f} threshold={unrelated['threshold']:.3f}"
        )


if __name__ == "__main__":
    main()
