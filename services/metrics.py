"""Prometheus metrics, with the official client library.

Processes count what they do: the API its queries, workers their stage times, documents
finished and embedding requests. Under several processes (Celery's prefork pool, uvicorn
workers) set PROMETHEUS_MULTIPROC_DIR to an empty directory per deployment unit and the
scrape aggregates every process's files (the client's multiprocess mode). What is true of the
whole system (documents by status, queue depth, the oldest waiting document) is read from the
database and the broker at scrape time by the API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

QUERY_SECONDS = Histogram(
    "groundwire_query_seconds",
    "Latency of query and context requests, embedding the question included.",
    ["endpoint", "mode"],
    buckets=LATENCY_BUCKETS,
)
QUERIES = Counter(
    "groundwire_queries", "Query and context requests answered.", ["endpoint", "mode", "grounded"]
)
STAGE_SECONDS = Histogram(
    "groundwire_stage_seconds",
    "Time a worker spent on one task of a stage (ingest: parse and chunk; embed: embed and write).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
SEARCHABLE_SECONDS = Histogram(
    "groundwire_time_to_searchable_seconds",
    "From a document version's acceptance to its chunks being searchable.",
    buckets=STAGE_BUCKETS,
)
DOCUMENTS_FINISHED = Counter(
    "groundwire_documents_finished", "Documents finished by workers.", ["outcome"]
)
EMBEDDING_REQUESTS = Counter(
    "groundwire_embedding_requests",
    "Requests to an embedding provider (or local model calls), by how they ended.",
    ["space", "outcome"],
)
EMBEDDING_TOKENS = Counter(
    "groundwire_embedding_tokens", "Tokens sent to the embedder in successful requests.", ["space"]
)
EMBEDDING_INPUTS = Counter(
    "groundwire_embedding_inputs", "Texts embedded in successful requests.", ["space"]
)
PROVIDER_RATE_LIMITED = Counter(
    "groundwire_provider_rate_limited", "429 answers from the embedding provider.", ["space"]
)


def observe_query(endpoint: str, mode: str, grounded: bool, seconds: float) -> None:
    """Counts one answered query."""
    QUERY_SECONDS.labels(endpoint, mode).observe(seconds)
    QUERIES.labels(endpoint, mode, "true" if grounded else "false").inc()


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every process's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


class SystemCollector(Collector):
    """Reads documents by status and the queue-depth signal at scrape time."""

    def collect(self) -> Iterator[Metric]:
        """Yields the gauges, or `groundwire_state_up 0` when a backend is unreachable."""
        from sqlalchemy import func, select

        from services.db import session_scope
        from services.models import Document
        from services.queues import broker_lengths, stages, waiting

        up = GaugeMetricFamily(
            "groundwire_state_up", "1 when the database and broker answered this scrape."
        )
        try:
            with session_scope() as session:
                counts = waiting(session)
                by_status = dict(
                    session.execute(
                        select(Document.status, func.count()).group_by(Document.status)
                    ).all()
                )
            lengths = broker_lengths([name for name, _ in stages().values()])
        except Exception as error:  # a scrape never fails: it says what it could not read
            log.warning("metrics: could not read system state: %s", error)
            up.add_metric([], 0)
            yield up
            return
        documents = GaugeMetricFamily(
            "groundwire_documents", "Documents by status.", labels=["status"]
        )
        for status in ("queued", "processing", "done", "failed"):
            documents.add_metric([status], int(by_status.get(status, 0)))
        messages = GaugeMetricFamily(
            "groundwire_queue_messages",
            "Messages waiting in a broker queue.",
            labels=["queue", "stage"],
        )
        waiting_docs = GaugeMetricFamily(
            "groundwire_queue_documents",
            "Documents waiting on a stage.",
            labels=["queue", "stage"],
        )
        oldest = GaugeMetricFamily(
            "groundwire_queue_oldest_age_seconds",
            "Age of the oldest document waiting on a stage (0 when none).",
            labels=["queue", "stage"],
        )
        for stage, (name, status) in stages().items():
            count, age = counts.get(status, (0, None))
            messages.add_metric([name, stage], lengths[name])
            waiting_docs.add_metric([name, stage], count)
            oldest.add_metric([name, stage], age or 0.0)
        up.add_metric([], 1)
        yield from (up, documents, messages, waiting_docs, oldest)


def exposition(include_system: bool) -> tuple[bytes, str]:
    """Returns the text exposition of this process's (or processes') metrics and content type."""
    body = generate_latest(process_registry())
    if include_system:
        system = CollectorRegistry()
        system.register(SystemCollector())
        body += generate_latest(system)
    return body, CONTENT_TYPE_LATEST
