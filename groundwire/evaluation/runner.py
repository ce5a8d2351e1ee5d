"""Runs an evaluation through the real API: ingest the corpus, ask every question per mode."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from groundwire.evaluation.beir import Dataset, document_text
from groundwire.evaluation.metrics import (
    Operating,
    calibrate,
    document_ranking,
    mrr_at,
    ndcg_at,
    operating_point,
    percentile,
    recall_at,
)

INGEST_BATCH = 500
RETRIEVE_K = 100
Progress = Callable[[str], None]


class EvalError(RuntimeError):
    """The service refused something the evaluation needs."""


@dataclass(frozen=True)
class ModeResult:
    """Retrieval quality and latency of one mode."""

    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_p50_ms: float
    latency_p95_ms: float
    # With --rerank: whether the rows are reranked, and how many questions fell back to the
    # retrieval order (the reranker failed or ran past its budget).
    reranked: bool = False
    rerank_fallbacks: int = 0


@dataclass(frozen=True)
class AnswerStatuses:
    """How the answer endpoint ended for a set of questions."""

    questions: int
    statuses: dict[str, int]

    @property
    def abstained(self) -> float:
        """The share answered "I don't know": no context, or the model declined."""
        kept = self.statuses.get("no_context", 0) + self.statuses.get("declined", 0)
        return kept / self.questions if self.questions else 0.0


@dataclass
class Report:
    """Everything `groundwire eval` measured."""

    collection: str
    documents: int
    chunks: int
    ingest_seconds: float
    failed_documents: int
    modes: list[ModeResult] = field(default_factory=list)
    grounding_mode: str = "hybrid"
    at_collection_threshold: Operating | None = None
    calibrated: Operating | None = None
    held_out: Operating | None = None
    threshold_written: bool = False
    answers_answerable: AnswerStatuses | None = None
    answers_unanswerable: AnswerStatuses | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise EvalError(
            f"{response.request.method} {response.request.url.path}: {response.text[:300]}"
        )
    return dict(response.json()) if response.content else {}


def ingest_corpus(
    client: httpx.Client, data: Dataset, collection: str, embedder: str | None, progress: Progress
) -> tuple[float, int]:
    """Creates the collection if needed and ingests the corpus; returns (seconds, failures)."""
    if client.get(f"/v1/collections/{collection}").status_code == 404:
        body: dict[str, Any] = {"name": collection}
        if embedder:
            body["embedder"] = embedder
        _check(client.post("/v1/collections", json=body))
    started = time.perf_counter()
    items = list(data.corpus.items())
    batches = []
    for start in range(0, len(items), INGEST_BATCH):
        documents = [
            {"id": doc_id, "title": title or None, "text": document_text(title, text)}
            for doc_id, (title, text) in items[start : start + INGEST_BATCH]
        ]
        batches.append(
            _check(
                client.post(
                    f"/v1/collections/{collection}/documents", json={"documents": documents}
                )
            )["batch_id"]
        )
    while True:
        states = [_check(client.get(f"/v1/batches/{b}")) for b in batches]
        done = sum(s["done"] + s["unchanged"] + s["failed"] for s in states)
        progress(f"ingest: {done}/{len(items)} documents processed")
        if all(s["finished"] for s in states):
            return time.perf_counter() - started, sum(s["failed"] for s in states)
        time.sleep(1.0)


@dataclass
class Asked:
    """What asking a set of questions gave: document rankings, best scores, latencies (ms),
    and how many asked to rerank were not."""

    rankings: list[list[str]] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rerank_fallbacks: int = 0


def ask(
    client: httpx.Client,
    collection: str,
    questions: Sequence[str],
    mode: str,
    progress: Progress,
    rerank: bool = False,
    space: str = "active",
) -> Asked:
    """Asks each question (reranked, or explicitly not, with `rerank`; of the shadow space
    of the collection's open migration with `space="shadow"`)."""
    asked = Asked()
    for i, question in enumerate(questions):
        started = time.perf_counter()
        body: dict[str, Any] = {
            "query": question,
            "k": RETRIEVE_K,
            "mode": mode,
            "min_score": -1,
            "rerank": rerank,
        }
        if space != "active":
            body["space"] = space
        answer = _check(client.post(f"/v1/collections/{collection}/query", json=body))
        asked.latencies.append((time.perf_counter() - started) * 1000)
        asked.rankings.append(document_ranking([r["document_id"] for r in answer["results"]]))
        asked.best.append(answer["best_score"] if answer["best_score"] is not None else -1.0)
        asked.rerank_fallbacks += rerank and answer.get("reranked") is not True
        if (i + 1) % 100 == 0:
            progress(f"{mode}{'+rerank' if rerank else ''}: {i + 1}/{len(questions)} questions")
    return asked


def mode_result(mode: str, asked: Asked, qrels: list[dict[str, int]], rerank: bool) -> ModeResult:
    """Retrieval quality and latency of one way of asking."""
    pairs = list(zip(asked.rankings, qrels, strict=True))
    n = len(pairs)
    return ModeResult(
        mode=f"{mode}+rerank" if rerank else mode,
        queries=n,
        ndcg_at_10=sum(ndcg_at(r, j, 10) for r, j in pairs) / n,
        recall_at_10=sum(recall_at(r, j, 10) for r, j in pairs) / n,
        recall_at_100=sum(recall_at(r, j, 100) for r, j in pairs) / n,
        mrr_at_10=sum(mrr_at(r, j, 10) for r, j in pairs) / n,
        latency_p50_ms=percentile(asked.latencies, 50),
        latency_p95_ms=percentile(asked.latencies, 95),
        reranked=rerank,
        rerank_fallbacks=asked.rerank_fallbacks,
    )


def held_out_estimate(
    answerable: list[float], unanswerable: list[float], target: float
) -> Operating:
    """Two-fold estimate: calibrate on one half of each set, measure on the other, average."""
    points = []
    for fold in (0, 1):
        fit = calibrate(answerable[fold::2], unanswerable[fold::2], target)
        points.append(
            operating_point(answerable[1 - fold :: 2], unanswerable[1 - fold :: 2], fit.threshold)
        )
    return Operating(
        threshold=sum(p.threshold for p in points) / 2,
        coverage=sum(p.coverage for p in points) / 2,
        false_grounding=sum(p.false_grounding for p in points) / 2,
    )


def evaluate(
    client: httpx.Client,
    data: Dataset,
    collection: str,
    *,
    embedder: str | None = None,
    modes: Sequence[str] = ("hybrid", "vector", "keyword"),
    target_false_grounding: float | None = None,
    write_threshold: bool = False,
    max_queries: int | None = None,
    answers: bool = False,
    rerank: bool = False,
    progress: Progress = lambda _: None,
) -> Report:
    """Ingests the corpus, measures every mode, and reports (and optionally calibrates) the
    threshold on the first mode's best scores; with `rerank`, every mode also reranked, side
    by side; with `answers`, also how the answer endpoint ends for the answerable and the
    unanswerable questions (the chat model is called)."""
    seconds, failed = ingest_corpus(client, data, collection, embedder, progress)
    info = _check(client.get(f"/v1/collections/{collection}"))
    report = Report(
        collection, len(data.corpus), info["chunks"], seconds, failed, grounding_mode=modes[0]
    )
    judged = [q for q in data.queries if q in data.qrels][:max_queries]
    unanswerable = list(data.unanswerable.values())[:max_queries]
    questions = [data.queries[q] for q in judged]
    qrels = [data.qrels[q] for q in judged]
    for mode in modes:
        asked = ask(client, collection, questions, mode, progress)
        report.modes.append(mode_result(mode, asked, qrels, rerank=False))
        if rerank:
            reranked = ask(client, collection, questions, mode, progress, rerank=True)
            report.modes.append(mode_result(mode, reranked, qrels, rerank=True))
        best = asked.best
        if mode == modes[0] and unanswerable:
            off_topic = ask(client, collection, unanswerable, mode, progress).best
            report.at_collection_threshold = operating_point(
                best, off_topic, float(info["threshold"])
            )
            if target_false_grounding is not None:
                report.calibrated = calibrate(best, off_topic, target_false_grounding)
                report.held_out = held_out_estimate(best, off_topic, target_false_grounding)
                if write_threshold:
                    _check(
                        client.patch(
                            f"/v1/collections/{collection}",
                            json={"threshold": report.calibrated.threshold},
                        )
                    )
                    report.threshold_written = True
    if answers:
        report.answers_answerable = answer_statuses(client, collection, questions, progress)
        report.answers_unanswerable = answer_statuses(client, collection, unanswerable, progress)
    return report


def answer_statuses(
    client: httpx.Client, collection: str, questions: list[str], progress: Progress
) -> AnswerStatuses:
    """Asks each question of the answer endpoint; counts how each ended."""
    statuses: dict[str, int] = {}
    for i, question in enumerate(questions, start=1):
        reply = _check(
            client.post(f"/v1/collections/{collection}/answer", json={"query": question})
        )
        statuses[reply["status"]] = statuses.get(reply["status"], 0) + 1
        if i % 50 == 0:
            progress(f"answered {i}/{len(questions)}")
    return AnswerStatuses(len(questions), dict(sorted(statuses.items())))


def format_report(report: Report) -> str:
    """A plain-text table of the report."""
    lines = [
        f"collection {report.collection}: {report.documents} documents, {report.chunks} chunks, "
        f"ingested in {report.ingest_seconds:.1f} s ({report.failed_documents} failed)",
        "",
        f"{'mode':<15} {'queries':>7} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}"
        f" {'p50 ms':>7} {'p95 ms':>7}",
    ]
    for m in report.modes:
        lines.append(
            f"{m.mode:<15} {m.queries:>7} {m.ndcg_at_10:>8.4f} {m.recall_at_10:>7.4f} "
            f"{m.recall_at_100:>7.4f} {m.mrr_at_10:>7.4f} {m.latency_p50_ms:>7.1f}"
            f" {m.latency_p95_ms:>7.1f}"
            + (f"  ({m.rerank_fallbacks} fell back)" if m.rerank_fallbacks else "")
        )
    for label, point in (
        ("collection threshold", report.at_collection_threshold),
        ("calibrated threshold", report.calibrated),
        ("held-out (2-fold)", report.held_out),
    ):
        if point is not None:
            lines.append(
                f"{label:<21} {point.threshold:.4f}: coverage {point.coverage:.3f}, "
                f"false grounding {point.false_grounding:.3f} ({report.grounding_mode} best score)"
            )
    if report.threshold_written:
        lines.append("calibrated threshold written to the collection")
    for label, answered in (
        ("answers, answerable", report.answers_answerable),
        ("answers, unanswerable", report.answers_unanswerable),
    ):
        if answered is not None:
            counts = ", ".join(f"{status} {n}" for status, n in answered.statuses.items())
            lines.append(
                f"{label:<21} {answered.questions} asked: {counts};"
                f" abstained {answered.abstained:.3f}"
            )
    return "\n".join(lines)


@dataclass
class SpaceComparison:
    """The active and the shadow space of a migration, measured side by side."""

    collection: str
    migration: int
    active: list[ModeResult] = field(default_factory=list)
    shadow: list[ModeResult] = field(default_factory=list)
    grounding_mode: str = "hybrid"
    active_at_threshold: Operating | None = None  # the active space at its threshold
    shadow_at_threshold: Operating | None = None  # the shadow space at its threshold so far
    calibrated: Operating | None = None  # the shadow space, calibrated on the labels
    held_out: Operating | None = None
    recorded: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def open_migration(client: httpx.Client, collection: str) -> dict[str, Any]:
    """The collection's migration building or ready; EvalError when it has none."""
    listed = _check(client.get(f"/v1/collections/{collection}/migrations"))["migrations"]
    for migration in listed:
        if migration["status"] in ("building", "ready"):
            return dict(migration)
    raise EvalError(
        f"collection {collection!r} has no migration building: start one with"
        f" POST /v1/collections/{collection}/migrations"
    )


def wait_ready(
    client: httpx.Client, collection: str, migration: int, progress: Progress
) -> dict[str, Any]:
    """Waits for the migration's build to finish."""
    while True:
        found = _check(client.get(f"/v1/collections/{collection}/migrations/{migration}"))
        if found["status"] != "building":
            if found["status"] != "ready":
                raise EvalError(f"migration {migration} is {found['status']}")
            return found
        progress(f"migration {migration}: {found['done']}/{found['total']} documents built")
        time.sleep(2.0)


def compare_spaces(
    client: httpx.Client,
    data: Dataset,
    collection: str,
    *,
    data_name: str,
    modes: Sequence[str] = ("hybrid", "vector", "keyword"),
    target_false_grounding: float | None = None,
    max_queries: int | None = None,
    progress: Progress = lambda _: None,
) -> SpaceComparison:
    """Measures the shadow space of the collection's open migration beside its active space
    (the corpus is already in the collection: nothing is ingested), and records the result
    on the migration; with a target, the threshold calibrated on the shadow space's best
    scores is recorded too, and becomes its threshold (method `eval`)."""
    migration = wait_ready(client, collection, open_migration(client, collection)["id"], progress)
    info = _check(client.get(f"/v1/collections/{collection}"))
    report = SpaceComparison(collection, migration["id"], grounding_mode=modes[0])
    judged = [q for q in data.queries if q in data.qrels][:max_queries]
    unanswerable = list(data.unanswerable.values())[:max_queries]
    questions = [data.queries[q] for q in judged]
    qrels = [data.qrels[q] for q in judged]
    for mode in modes:
        for space, results in (("active", report.active), ("shadow", report.shadow)):
            asked = ask(client, collection, questions, mode, progress, space=space)
            results.append(mode_result(mode, asked, qrels, rerank=False))
            if mode != modes[0] or not unanswerable:
                continue
            off_topic = ask(client, collection, unanswerable, mode, progress, space=space).best
            if space == "active":
                report.active_at_threshold = operating_point(
                    asked.best, off_topic, float(info["threshold"])
                )
                continue
            current = migration["threshold"]["new"]
            if current is not None:
                report.shadow_at_threshold = operating_point(asked.best, off_topic, current)
            if target_false_grounding is not None:
                report.calibrated = calibrate(asked.best, off_topic, target_false_grounding)
                report.held_out = held_out_estimate(asked.best, off_topic, target_false_grounding)
    recorded: dict[str, Any] = {"data": data_name, **report.as_dict()}
    if report.calibrated is not None:
        recorded["calibrated_threshold"] = report.calibrated.threshold
    _check(
        client.put(
            f"/v1/collections/{collection}/migrations/{migration['id']}/comparison",
            json=recorded,
        )
    )
    report.recorded = True
    return report


def format_comparison(report: SpaceComparison) -> str:
    """A plain-text table of a comparison of the two spaces."""
    lines = [
        f"collection {report.collection}, migration {report.migration}: active and shadow space",
        "",
        f"{'mode':<10} {'space':<7} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7}"
        f" {'p50 ms':>7}",
    ]
    for active, shadow in zip(report.active, report.shadow, strict=True):
        for space, m in (("active", active), ("shadow", shadow)):
            lines.append(
                f"{m.mode:<10} {space:<7} {m.ndcg_at_10:>8.4f} {m.recall_at_10:>7.4f} "
                f"{m.recall_at_100:>7.4f} {m.mrr_at_10:>7.4f} {m.latency_p50_ms:>7.1f}"
            )
    for label, point in (
        ("active at its threshold", report.active_at_threshold),
        ("shadow at its threshold", report.shadow_at_threshold),
        ("shadow calibrated", report.calibrated),
        ("shadow held-out (2-fold)", report.held_out),
    ):
        if point is not None:
            lines.append(
                f"{label:<25} {point.threshold:.4f}: coverage {point.coverage:.3f}, "
                f"false grounding {point.false_grounding:.3f} ({report.grounding_mode})"
            )
    if report.recorded:
        what = "with its calibrated threshold" if report.calibrated is not None else ""
        lines.append(f"recorded on migration {report.migration} {what}".rstrip())
    return "\n".join(lines)
