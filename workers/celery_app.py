"""The workers' Celery app, built from the broker contract, and each process's runtime.

`celery -A workers.celery_app worker` loads this module: the app gets its configuration from
`services.broker` and the task modules listed here. Every pool process builds its own runtime
(database, embedders, broker) from the settings after the fork, so nothing inherited from the
parent (connections, a loaded model) is ever shared.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_process_shutdown
from prometheus_client import multiprocess, start_http_server

from services.broker import MIGRATIONS, WEBHOOKS, create_celery
from services.config import Settings
from services.metrics import process_registry
from services.runtime import Runtime
from workers.parse_process import ParseProcess

TICKS = (WEBHOOKS, MIGRATIONS)


class QuietTicks(logging.Filter):
    """Drops the lines Celery writes at INFO for every webhook and migration tick (three a
    tick, in beat and in the worker, and one for each tick that expired in the queue while
    another ran); a tick's own warnings and errors remain."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(tick in message for tick in TICKS)


for _logger in (
    "celery.beat",
    "celery.worker.strategy",
    "celery.app.trace",
    "celery.worker.request",
):
    logging.getLogger(_logger).addFilter(QuietTicks())
# httpx logs every request at INFO, URLs and all: a webhook's URL may carry its receiver's
# token, and a worker logs no secret.
logging.getLogger("httpx").setLevel(logging.WARNING)

settings = Settings()
app = create_celery(settings, include=["workers.tasks"])
app.set_current()

_runtime: Runtime | None = None
_parser: tuple[int, ParseProcess] | None = None


def runtime() -> Runtime:
    """Returns this process's runtime, built at process init (or on first use in a pool
    without forked processes, such as `solo` or `threads`)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.build(settings, celery=app)
    return _runtime


def parser() -> ParseProcess:
    """Returns this process's parser child (started on first use, one per process)."""
    global _parser
    if _parser is None or _parser[0] != os.getpid():  # a forked process starts its own
        _parser = (os.getpid(), ParseProcess(settings.parse_timeout_s, settings.parse_memory_bytes))
    return _parser[1]


@worker_process_init.connect
def _build_runtime(**_: Any) -> None:
    """Builds the pool process's runtime once it has forked."""
    global _runtime
    _runtime = Runtime.build(settings, celery=app)


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """Serves every pool process's metrics from the worker's main process, when configured."""
    if settings.worker_metrics_port is not None:
        start_http_server(
            settings.worker_metrics_port,
            addr=settings.worker_metrics_host,
            registry=process_registry(),
        )


@worker_process_shutdown.connect
def _forget_process(pid: int | None = None, **_: Any) -> None:
    """Lets the multiprocess collector drop a pool process's live values when it exits."""
    if _parser is not None and _parser[0] == os.getpid():
        _parser[1].close()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid is not None:
        multiprocess.mark_process_dead(pid)
