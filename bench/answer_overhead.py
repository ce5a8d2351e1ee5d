"""What answering adds to the model's own time: retrieval and packing before the model, and
checking every sentence after it, beside the model's latency, p50 and p95.

    .venv/bin/python -m bench.answer_overhead [--documents 300] [--questions 100]
        [--model-latency 0.4] [--embedder local]

Loads the first `--documents` SciFact abstracts (../shared/data/scifact-dev) into a collection
on throwaway services (embedded PostgreSQL, the REDIS_URL Redis or a local one, one worker),
starts the stand-in chat model (tests/support/openai_server.py) answering faithfully after
`--model-latency` seconds, and asks `--questions` SciFact claims through the answer service,
timing each phase: retrieval (embedding the question, search, packing the context), the
model call, and checking the answer's sentences. Then the same questions through
`POST /v1/collections/{name}/answer`, end to end. Prints p50 and p95 of each and the
overhead (everything but the model) against the model's time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    admin_client,
    database,
    run_queues,
    settings_for,
    start_workers,
    stop_workers,
)
from groundwire import migrate
from groundwire.embedded import start_redis
from services.answers import service
from services.answers.chat import ChatModel
from services.answers.checkers import Lexical
from services.answers.schemas import AnswerRequest
from services.answers.support import SupportModel
from services.config import Settings
from services.models import Collection
from services.query.vectors import QueryVectorCache
from services.runtime import Runtime

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"


def cuts(values: list[float]) -> tuple[float, float]:
    points = statistics.quantiles(values, n=100, method="inclusive")
    return points[49], points[94]


def line(label: str, values: list[float]) -> str:
    p50, p95 = cuts(values)
    return f"{label:<28} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms"


def fake_model(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    """The stand-in chat model in a process of its own; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--chat-latency", str(latency)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--model-latency", type=float, default=0.4)
    parser.add_argument("--embedder", default="local")
    args = parser.parse_args()
    corpus = [json.loads(x) for x in (DATA / "corpus.jsonl").open()][: args.documents]
    claims = [json.loads(x)["text"] for x in (DATA / "queries.jsonl").open()][: args.questions]
    model, model_url = fake_model(args.model_latency)
    tmp = Path(f"/tmp/gw-answer-bench-{time.time_ns()}")
    redis = start_redis(tmp, persistent=False)
    try:
        with database() as url:
            migrate.upgrade(url)
            env = {
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "OPENAI_BASE_URL": model_url,
                "OPENAI_API_KEY": "bench",
                "GROUNDWIRE_LOCAL_THREADS": "1",
                **run_queues(),
            }
            settings = settings_for(env)
            workers = start_workers(1, env)
            try:
                run(settings, args, corpus, claims)
            finally:
                stop_workers(workers)
    finally:
        redis.stop()
        model.terminate()


def run(
    settings: Settings, args: argparse.Namespace, corpus: list[dict[str, str]], claims: list[str]
) -> None:
    """Loads the corpus, then times the answers' phases and the whole requests."""
    name = "answer-bench"
    with admin_client(settings) as api:
        api.post("/v1/collections", json={"name": name, "embedder": args.embedder})
        for start in range(0, len(corpus), 100):
            docs = [
                {"id": d["id"], "title": d["title"], "text": d["text"]}
                for d in corpus[start : start + 100]
            ]
            api.post(f"/v1/collections/{name}/documents", json={"documents": docs})
        while api.get(f"/v1/collections/{name}").json()["documents"]["done"] < len(corpus):
            time.sleep(1)
        runtime = Runtime.build(settings)
        vectors = QueryVectorCache(runtime.embedders)
        chat = ChatModel(settings)
        support = Lexical(SupportModel.default())
        retrieval, model, checking, overhead = [], [], [], []
        with runtime.database.scope() as session:
            collection = session.query(Collection).filter_by(name=name).one()
            for claim in claims:
                request = AnswerRequest(query=claim, min_score=-1)
                t0 = time.perf_counter()
                prepared = service.prepare(session, vectors, settings, collection, request, ())
                t1 = time.perf_counter()
                completion = chat.complete(prepared.model, prepared.messages)
                t2 = time.perf_counter()
                service.outcome(prepared, completion, request, support)
                t3 = time.perf_counter()
                retrieval.append((t1 - t0) * 1000)
                model.append((t2 - t1) * 1000)
                checking.append((t3 - t2) * 1000)
                overhead.append((t1 - t0 + t3 - t2) * 1000)
        end_to_end = []
        for claim in claims:
            t0 = time.perf_counter()
            answer = api.post(
                f"/v1/collections/{name}/answer", json={"query": claim, "min_score": -1}
            )
            end_to_end.append((time.perf_counter() - t0) * 1000)
            assert answer.status_code == 200, answer.text
        runtime.close()
    print(
        f"{len(corpus)} SciFact abstracts ({args.embedder}), {len(claims)} claims asked,"
        f" stand-in model answering after {args.model_latency:g} s"
    )
    print(line("retrieval and packing", retrieval))
    print(line("the model", model))
    print(line("checking the sentences", checking))
    print(line("overhead (all but the model)", overhead))
    print(line("end to end over HTTP", end_to_end))
    share = statistics.median(o / m for o, m in zip(overhead, model, strict=True))
    print(f"median overhead / model time: {share:.1%}")


if __name__ == "__main__":
    main()
