"""The Celery application: Redis broker, late acks, one message in flight per process."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from services.config import Settings, get_settings

PREPARE = "groundwire.prepare_documents"
EMBED = "groundwire.embed_documents"
SWEEP = "groundwire.sweep"


def broker_url(redis_url: str) -> str:
    """Returns a kombu broker URL for `redis_url`; a unix socket becomes `redis+socket://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


def configure(app: Celery, settings: Settings) -> None:
    """Applies Groundwire's delivery guarantees to `app`.

    Tasks are acknowledged after they finish and re-queued if their process dies, so a crash
    never loses work; each process reserves one message at a time. Redis re-delivers a message
    not acknowledged within the visibility timeout, which is kept above the longest task and
    the largest retry delay.
    """
    if settings.task_retry_backoff_max_s >= settings.visibility_timeout_s:
        raise ValueError("task_retry_backoff_max_s must stay below visibility_timeout_s")
    if settings.task_retry_backoff_max_s >= settings.processing_lease_s:
        raise ValueError("task_retry_backoff_max_s must stay below processing_lease_s")
    app.conf.update(
        broker_url=broker_url(settings.redis_url or "redis://127.0.0.1:6379/0"),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=settings.ingest_queue,
        task_routes={
            PREPARE: {"queue": settings.ingest_queue},
            EMBED: {"queue": settings.embed_queue},
        },
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep": {"task": SWEEP, "schedule": settings.sweep_interval_s},
        },
    )


app = Celery("groundwire", include=["workers.tasks"])
configure(app, get_settings())


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """Drops database connections and models inherited from the parent process."""
    from services.db import reset_engine
    from services.embedding.registry import clear_embedders

    reset_engine()
    clear_embedders()


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """Serves every pool process's metrics from the worker's main process, when configured."""
    port = get_settings().worker_metrics_port
    if port is None:
        return
    from prometheus_client import start_http_server

    from services.metrics import process_registry

    start_http_server(port, registry=process_registry())


@worker_process_shutdown.connect
def _forget_process(pid: int | None = None, **_: Any) -> None:
    """Lets the multiprocess collector drop a pool process's live values when it exits."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
