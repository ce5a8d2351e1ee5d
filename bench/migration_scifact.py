"""A real migration on SciFact (../shared/data/scifact-dev): `hash:384` → the bundled local
model, through the API, workers and migration tick, with the threshold matched on the query
log, against the one `groundwire eval --space shadow --calibrate` finds on the labels.

1. The corpus is ingested into a `hash:384` collection; `--logged` questions (drawn at random
   from the claims and the unanswerable questions together) are asked through the API, so
   they are in the query log.
2. A migration to `local` is started and waited for: its threshold is matched on the log
   (method `query_log`).
3. The held-out questions (the rest) are asked of both spaces: the grounded share under the
   old space at its threshold against the new space at the matched threshold (target: within
   5 points), and coverage (claims) and false grounding (unanswerable) under each.
4. `compare_spaces` (what `groundwire eval --space shadow --calibrate` runs) measures both
   spaces on all the labelled data and calibrates the shadow space's threshold at 5% false
   grounding: its coverage and false grounding are printed beside the matched threshold's.

    .venv/bin/python -m bench.migration_scifact [--logged 300] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bench.common import (
    admin_client,
    database,
    run_queues,
    settings_for,
    start_workers,
    stop_workers,
)
from groundwire.embedded import start_redis
from groundwire.evaluation import beir
from groundwire.evaluation.metrics import operating_point
from groundwire.evaluation.runner import compare_spaces, ingest_corpus
from services.runtime import Runtime
from workers import space_driver

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact-dev"
NAME = "scifact"


def best_scores(api: TestClient, questions: list[str], space: str) -> list[float]:
    best = []
    for question in questions:
        body: dict[str, Any] = {"query": question, "k": 10, "min_score": -1}
        if space == "shadow":
            body["space"] = "shadow"
        found = api.post(f"/v1/collections/{NAME}/query", json=body)
        assert found.status_code == 200, found.text
        score = found.json()["best_score"]
        best.append(score if score is not None else -1.0)
    return best


def share(scores: list[float], threshold: float) -> float:
    return sum(s >= threshold for s in scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logged", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    data = beir.load(DATA)
    claims = [data.queries[q] for q in data.queries if q in data.qrels]
    off_topic = list(data.unanswerable.values())
    pool = [(q, True) for q in claims] + [(q, False) for q in off_topic]
    random.Random(args.seed).shuffle(pool)
    logged, held_out = pool[: args.logged], pool[args.logged :]
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    with database() as url, tempfile.TemporaryDirectory(prefix="gw-bench-redis-") as tmp:
        redis_server = start_redis(Path(tmp), persistent=False)
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis_server.url,
            "GROUNDWIRE_LOCAL_THREADS": "1",
            **run_queues(),
        }
        settings = settings_for(env)
        workers = start_workers(args.workers, env)
        runtime = Runtime.build(settings)
        try:
            with admin_client(settings) as api, space_driver.ticking(runtime):
                http: Any = api  # the in-process API speaks httpx's interface
                seconds, failed = ingest_corpus(http, data, NAME, "hash:384", log)
                old_threshold = float(api.get(f"/v1/collections/{NAME}").json()["threshold"])
                log(f"ingested in {seconds:.0f} s ({failed} failed); asking the logged questions")
                best_scores(api, [q for q, _ in logged], "active")
                started = time.perf_counter()
                begun = api.post(f"/v1/collections/{NAME}/migrations", json={"embedder": "local"})
                assert begun.status_code == 202, begun.text
                mid = begun.json()["id"]
                while True:
                    found = api.get(f"/v1/collections/{NAME}/migrations/{mid}").json()
                    if found["status"] != "building":
                        break
                    log(f"building: {found['done']}/{found['total']}, eta {found['eta_seconds']}")
                    time.sleep(10)
                build_seconds = time.perf_counter() - started
                assert found["status"] == "ready", found
                matched = float(found["threshold"]["new"])
                detail = found["threshold"]["detail"]
                log("asking the held-out questions of both spaces")
                questions = [q for q, _ in held_out]
                old_best = best_scores(api, questions, "active")
                new_best = best_scores(api, questions, "shadow")
                compared = compare_spaces(
                    http, data, NAME, data_name="scifact-dev", modes=["hybrid"],
                    target_false_grounding=0.05, progress=log,
                )  # fmt: skip
        finally:
            runtime.close()
            stop_workers(workers)
            redis_server.stop()
    answerable = [i for i, (_, a) in enumerate(held_out) if a]
    unanswerable = [i for i, (_, a) in enumerate(held_out) if not a]

    def point(scores: list[float], threshold: float) -> str:
        p = operating_point(
            [scores[i] for i in answerable], [scores[i] for i in unanswerable], threshold
        )
        return f"coverage {p.coverage:.3f}, false grounding {p.false_grounding:.3f}"

    old_share, new_share = share(old_best, old_threshold), share(new_best, matched)
    print(
        f"SciFact, hash:384 -> local: {found['total']:,} documents,"
        f" {found['embedded'] + found['cached']:,} chunks built in {build_seconds:.0f} s"
    )
    print(
        f"  threshold {old_threshold:.4f} -> {matched:.4f} (query_log, {detail['questions']}"
        f" logged questions; grounded {detail['grounded_share_old']:.3f} ->"
        f" {detail['grounded_share_new']:.3f}; Spearman {detail['spearman']:.2f})"
    )
    print(
        f"  held-out {len(held_out)} questions grounded: {old_share:.3f} (old) ->"
        f" {new_share:.3f} (new), {100 * (new_share - old_share):+.1f} points"
    )
    print(f"  held-out, old space at {old_threshold:.4f}: {point(old_best, old_threshold)}")
    print(f"  held-out, new space at matched {matched:.4f}: {point(new_best, matched)}")
    calibrated = compared.calibrated
    assert calibrated is not None and compared.held_out is not None
    print(
        f"  all labelled data, new space eval-calibrated (5% target) {calibrated.threshold:.4f}:"
        f" coverage {calibrated.coverage:.3f}, false grounding {calibrated.false_grounding:.3f}"
        f" (2-fold held-out: {compared.held_out.coverage:.3f},"
        f" {compared.held_out.false_grounding:.3f})"
    )
    if compared.shadow_at_threshold is not None:
        at = compared.shadow_at_threshold
        print(
            f"  all labelled data, new space at matched {at.threshold:.4f}: coverage"
            f" {at.coverage:.3f}, false grounding {at.false_grounding:.3f}"
        )
    for active, shadow in zip(compared.active, compared.shadow, strict=True):
        print(
            f"  {active.mode} nDCG@10: {active.ndcg_at_10:.4f} (hash:384)"
            f" -> {shadow.ndcg_at_10:.4f} (local)"
        )


if __name__ == "__main__":
    main()
