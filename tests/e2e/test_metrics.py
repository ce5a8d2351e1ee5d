"""Prometheus metrics after real work: the API's /metrics (queries, documents by status, queue
depth) and the worker's exporter (stage times, documents finished, embedding requests, 429s)."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import ingest, query, wait_finished
from tests.support.waiting import wait_for


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def test_metrics_after_real_work(
    api: Any, fake_openai: Any, make_collection: Any, worker: Any, service_env: dict[str, str]
) -> None:
    fake_openai.reset(dimensions=24)
    name = make_collection("openai:fake-metrics-model")
    fake_openai.reset(dimensions=24, rate_limit_next=1, retry_after_s=0.1)
    docs = [{"id": f"m-{i}", "text": f"Metric note {i} about tides and buoys."} for i in range(5)]
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    assert query(api, name, "Metric note 3 about tides and buoys.")["grounded"]
    assert not query(api, name, "zebra crossing schedules", mode="keyword")["grounded"]

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "groundwire_state_up") == 1
    assert value(found, "groundwire_documents", status="done") >= 5
    ingest_queue = service_env["GROUNDWIRE_INGEST_QUEUE"]
    assert (
        "groundwire_queue_messages",
        frozenset({("queue", ingest_queue), ("stage", "ingest")}),
    ) in found
    embed_queue = service_env["GROUNDWIRE_EMBED_QUEUE"]
    embed_labels = frozenset({("queue", embed_queue), ("stage", "embed")})
    assert ("groundwire_queue_oldest_age_seconds", embed_labels) in found
    assert ("groundwire_queue_documents", embed_labels) in found
    # The oldest age is 0 exactly when no document waits on the stage.
    waiting_on_embed = found[("groundwire_queue_documents", embed_labels)]
    oldest_on_embed = found[("groundwire_queue_oldest_age_seconds", embed_labels)]
    assert (waiting_on_embed == 0) == (oldest_on_embed == 0), (waiting_on_embed, oldest_on_embed)
    assert value(found, "groundwire_query_seconds_count", endpoint="query", mode="hybrid") >= 1
    assert value(found, "groundwire_queries_total", mode="hybrid", grounded="true") >= 1
    assert value(found, "groundwire_queries_total", mode="keyword", grounded="false") >= 1

    assert worker.metrics_url is not None

    def worker_samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        got = samples(httpx.get(worker.metrics_url, timeout=5).text)
        return (
            got if value(got, "groundwire_documents_finished_total", outcome="done") >= 5 else None
        )

    found = wait_for(worker_samples, timeout=10)
    space = "openai:fake-metrics-model:24"
    assert value(found, "groundwire_stage_seconds_count", stage="ingest") >= 1
    assert value(found, "groundwire_stage_seconds_count", stage="embed") >= 1
    assert value(found, "groundwire_time_to_searchable_seconds_count") >= 5
    assert (
        value(found, "groundwire_embedding_requests_total", space=space, outcome="rate_limited")
        == 1
    )
    assert value(found, "groundwire_embedding_inputs_total", space=space) == 5
    assert value(found, "groundwire_embedding_tokens_total", space=space) > 0
    assert value(found, "groundwire_provider_rate_limited_total", space=space) == 1
