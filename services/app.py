"""The HTTP application: routers, error handling, body limits, and the runtime they share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api.errors import install_error_handlers
from services.api.health import router as health_router
from services.api.limits import BodySizeLimit
from services.api.queues import router as queues_router
from services.collections.routes import router as collections_router
from services.config import Settings
from services.ingest.routes import router as ingest_router
from services.query.routes import router as query_router
from services.query.vectors import QueryVectorCache
from services.runtime import Runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the Groundwire API for `settings` (read from the environment when not given).

    The lifespan builds the runtime (database, embedders, broker) once and releases it at
    shutdown; handlers reach it through `services.api.deps`.
    """
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        app.state.runtime = runtime
        app.state.query_vectors = QueryVectorCache(runtime.embedders)
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title="Groundwire",
        version="0.1.0",
        description="Grounded retrieval over your own documents.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    routers = (health_router, collections_router, ingest_router, query_router, queues_router)
    for router in routers:
        app.include_router(router)
    return app
