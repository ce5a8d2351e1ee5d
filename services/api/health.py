"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from services.api.deps import RuntimeDep, ServerAdmin
from services.api.errors import ErrorDetail, error_responses
from services.api.system_metrics import exposition
from services.runtime import Runtime

router = APIRouter(tags=["health"], responses=error_responses(413))


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether the database and the broker answered; the error says which did not."""

    status: Literal["ready", "unavailable"]
    error: ErrorDetail | None = None


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Answers while the process is alive."""
    return Health()


@router.get("/metrics", include_in_schema=False)
def metrics(caller: ServerAdmin, runtime: RuntimeDep) -> Response:
    """Prometheus text exposition: query metrics, documents by status, queue depth (server
    admin only: Prometheus sends the key as a bearer token)."""
    body, content_type = exposition(runtime)
    return Response(body, media_type=content_type)


def _problem(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]


def _check_database(runtime: Runtime) -> str | None:
    try:
        with runtime.database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:
        return _problem(error)
    return None


def _check_broker(runtime: Runtime) -> str | None:
    try:
        runtime.broker.ping()
    except Exception as error:
        return _problem(error)
    return None


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    responses={503: {"model": Readiness}},
)
def readyz(runtime: RuntimeDep) -> Readiness | JSONResponse:
    """Answers 200 when the database and the broker are reachable, else 503 with reasons."""
    checks = (("database", _check_database(runtime)), ("broker", _check_broker(runtime)))
    problems = {name: problem for name, problem in checks if problem}
    if problems:
        body = Readiness(
            status="unavailable",
            error=ErrorDetail(
                code="not_ready",
                message="; ".join(f"{k}: {v}" for k, v in problems.items()),
            ),
        )
        return JSONResponse(status_code=503, content=body.model_dump())
    return Readiness(status="ready")
