"""Prometheus metrics, with the official client library.

Processes count what they do: the API its queries, workers their stage times, documents
finished and embedding requests. Under several processes (Celery's prefork pool, uvicorn
workers) set PROMETHEUS_MULTIPROC_DIR to an empty directory per deployment unit and the
scrape aggregates every process's files (the client's multiprocess mode). What is true of the
whole system (documents by status, queue depth, the oldest waiting document) is read from the
database and the broker at scrape time by the API (`services/api/system_metrics.py`).
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

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
READS = Counter(
    "groundwire_reads",
    "Queries, contexts and answers with a read replica configured, by where they were read:"
    " the replica (it had replayed the collection's last write in time) or the primary.",
    ["served"],
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
RERANKS = Histogram(
    "groundwire_rerank_seconds",
    "Time the rerank stage took, by how it ended (reranked, timeout, unavailable, invalid).",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
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
