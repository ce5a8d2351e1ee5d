"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from services.config import get_settings
from services.db import get_engine
from services.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Answers while the process is alive."""
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus text exposition: query metrics, documents by status, queue depth."""
    body, content_type = exposition(include_system=True)
    return Response(body, media_type=content_type)


def _check_database() -> str | None:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:300]
    return None


def _check_broker() -> str | None:
    url = get_settings().redis_url or "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:300]
    return None


@router.get("/readyz")
def readyz() -> JSONResponse:
    """Answers 200 when the database and the broker are reachable, else 503 with reasons."""
    problems = {
        name: problem
        for name, problem in (("database", _check_database()), ("broker", _check_broker()))
        if problem
    }
    if problems:
        return JSONResponse(
            status_code=503,
            content={
                "status": "unavailable",
                "error": {
                    "code": "not_ready",
                    "message": "; ".join(f"{k}: {v}" for k, v in problems.items()),
                },
            },
        )
    return JSONResponse({"status": "ready"})
