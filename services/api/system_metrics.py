"""What is true of the whole system, read from the database and the broker at scrape time:
documents by status, queue depth and the oldest waiting document per stage."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from services.api.queues import queue_depths
from services.metrics import process_registry
from services.models import Document
from services.runtime import Runtime
from services.statuses import DocumentStatus

log = logging.getLogger(__name__)


class SystemCollector(Collector):
    """Reads documents by status and the queue-depth signal at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        """Yields the gauges, or `groundwire_state_up 0` when a backend is unreachable."""
        up = GaugeMetricFamily(
            "groundwire_state_up", "1 when the database and broker answered this scrape."
        )
        try:
            with self.runtime.database.scope() as session:
                depths = queue_depths(session, self.runtime.broker)
                by_status = dict(
                    session.execute(
                        select(Document.status, func.count()).group_by(Document.status)
                    ).all()
                )
        except Exception as error:  # a scrape never fails: it says what it could not read
            log.warning("metrics: could not read system state: %s", error)
            up.add_metric([], 0)
            yield up
            return
        documents = GaugeMetricFamily(
            "groundwire_documents", "Documents by status.", labels=["status"]
        )
        for status in DocumentStatus:
            documents.add_metric([status.value], int(by_status.get(status, 0)))
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
        for depth in depths:
            messages.add_metric([depth.name, depth.stage], depth.messages)
            waiting_docs.add_metric([depth.name, depth.stage], depth.documents)
            oldest.add_metric([depth.name, depth.stage], depth.oldest_age_seconds or 0.0)
        up.add_metric([], 1)
        yield from (up, documents, messages, waiting_docs, oldest)


def exposition(runtime: Runtime) -> tuple[bytes, str]:
    """Returns the text exposition of this process's (or processes') metrics and the system's."""
    body = generate_latest(process_registry())
    system = CollectorRegistry()
    system.register(SystemCollector(runtime))
    return body + generate_latest(system), CONTENT_TYPE_LATEST
