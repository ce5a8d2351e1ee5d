"""The HTTP application: routers, error handling, body limits."""

from __future__ import annotations

from fastapi import FastAPI

from services.collections.routes import router as collections_router
from services.config import get_settings
from services.errors import install_error_handlers
from services.health import router as health_router
from services.ingest.routes import router as ingest_router
from services.limits import BodySizeLimit
from services.query.routes import router as query_router
from services.queues import router as queues_router


def create_app() -> FastAPI:
    """Builds the Groundwire API."""
    app = FastAPI(
        title="Groundwire",
        version="0.1.0",
        description="Grounded retrieval over your own documents.",
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=get_settings().max_body_bytes)
    routers = (health_router, collections_router, ingest_router, query_router, queues_router)
    for router in routers:
        app.include_router(router)
    return app
