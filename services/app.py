"""The HTTP application: routers, error handling, the Host check, body and load limits, and the
runtime they share."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from services.access.routes import router as access_router
from services.analytics.routes import router as analytics_router
from services.answers.checkers import load_support_model
from services.answers.openai_compat import router as openai_router
from services.answers.routes import router as answers_router
from services.api.audit import AuditTrail
from services.api.docs import install_docs
from services.api.errors import install_error_handlers
from services.api.health import router as health_router
from services.api.hosts import AllowedHosts
from services.api.limits import BodySizeLimit
from services.api.overload import PROBE_RESERVE, InFlightLimit
from services.api.queues import router as queues_router
from services.api.ratelimit import RateLimiter
from services.collections.routes import router as collections_router
from services.config import Settings
from services.console.routes import install_console
from services.events.hub import EventHub
from services.events.routes import is_event_stream
from services.events.routes import router as events_router
from services.files.routes import is_file_upload
from services.files.routes import router as files_router
from services.ingest.chunk_routes import router as chunks_router
from services.ingest.routes import router as ingest_router
from services.query.routes import router as query_router
from services.query.vectors import QueryVectorCache
from services.rerank.service import build_stage
from services.runtime import Runtime
from services.spaces.routes import router as migrations_router
from services.webhooks.routes import router as webhooks_router

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, bound_host: str | None = None) -> FastAPI:
    """Builds the Groundwire API for `settings` (read from the environment when not given).

    The lifespan builds the runtime (database, embedders, broker) once and releases it at
    shutdown; handlers reach it through `services.api.deps`. `bound_host`, the address the
    server listens on, is a Host the API answers to (see services/api/hosts.py).
    """
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        app.state.runtime = runtime
        app.state.query_vectors = QueryVectorCache(runtime.embedders)
        app.state.rerank = build_stage(settings)
        app.state.support_model = load_support_model(settings)
        app.state.events = EventHub(runtime.settings.database_url or "")
        await app.state.events.start()
        app.state.rate_limiter = RateLimiter(settings.broker_redis_url())
        # A thread for every request let in (sync handlers run on threads): a health probe
        # never waits behind admitted requests for one.
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(
            threads.total_tokens, settings.max_inflight_requests + PROBE_RESERVE
        )
        if settings.admin_key is None:
            log.warning("GROUNDWIRE_ADMIN_KEY is not set: only workspace keys are accepted")
        try:
            yield
        finally:
            await app.state.events.stop()
            app.state.rate_limiter.close()
            if app.state.rerank is not None:
                app.state.rerank.reranker.close()
            if app.state.support_model is not None:
                app.state.support_model.close()
            runtime.close()

    app = FastAPI(
        title="Groundwire",
        version="0.1.0",
        description="Grounded retrieval over your own documents.",
        lifespan=lifespan,
        docs_url=None,  # served from a package by install_docs, not from a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    # The last added runs first: the Host check, then the body read whole under its limits,
    # then the count of requests in progress, then the audit trail.
    app.add_middleware(AuditTrail)
    app.add_middleware(
        InFlightLimit, limit=settings.max_inflight_requests, long_lived=is_event_stream
    )
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        budget=settings.max_inflight_body_bytes,
        streamed=is_file_upload,
    )
    app.add_middleware(AllowedHosts, allowed=settings.allowed_hosts, bound_host=bound_host)
    routers = (
        health_router,
        access_router,
        collections_router,
        files_router,
        chunks_router,
        migrations_router,
        ingest_router,
        query_router,
        answers_router,
        openai_router,
        queues_router,
        events_router,
        webhooks_router,
        analytics_router,
    )
    for router in routers:
        app.include_router(router)
    install_console(app)
    return app
