"""GET /v1/analytics/daily: the console's charts, read from the documented analytics views
(docs/analytics.md) for the caller's workspace and the collections its key may see."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.access.caller import Caller
from services.api.deps import Admin, SessionDep
from services.api.errors import error_responses
from services.collections.schemas import NAME_PATTERN

router = APIRouter(tags=["analytics"], responses=error_responses(401, 403, 422))

GAPS_SHOWN = 50


class IngestDay(BaseModel):
    day: date
    documents: int
    done: int
    failed: int


class EmbeddingDay(BaseModel):
    day: date
    tokens: int
    estimated_cost_usd: float | None


class QueryDay(BaseModel):
    day: date
    queries: int
    grounded: int
    grounded_rate: float | None


class KnowledgeGap(BaseModel):
    collection: str
    question: str | None
    times_asked: int
    last_asked: datetime
    best_score_seen: float | None
    threshold: float | None


class Daily(BaseModel):
    """Per UTC day over the last `days`: documents ingested, embedding tokens and cost,
    queries and their grounded share; and the questions most often answered "nothing
    relevant"."""

    days: int
    ingest: list[IngestDay]
    embedding: list[EmbeddingDay]
    queries: list[QueryDay]
    knowledge_gaps: list[KnowledgeGap]


def _scope(caller: Caller, collection: str | None) -> tuple[str, dict[str, Any]]:
    where = "workspace = :workspace"
    params: dict[str, Any] = {"workspace": caller.workspace}
    if collection is not None:
        where += " AND collection = :collection"
        params["collection"] = collection
    if caller.collections is not None:
        where += " AND collection = ANY(:visible)"
        params["visible"] = sorted(caller.collections)
    return where, params


def daily(session: Session, caller: Caller, days: int, collection: str | None) -> Daily:
    where, params = _scope(caller, collection)
    params["since"] = days - 1
    recent = f"{where} AND day >= current_date - :since"
    ingest = session.execute(
        text(
            "SELECT day, sum(documents), sum(done), sum(failed) FROM analytics.ingest_daily"
            f" WHERE {recent} GROUP BY day ORDER BY day"
        ),
        params,
    ).all()
    embedding = session.execute(
        text(
            "SELECT day, sum(tokens), sum(estimated_cost_usd)"
            f" FROM analytics.embedding_cost_daily WHERE {recent} GROUP BY day ORDER BY day"
        ),
        params,
    ).all()
    queries = session.execute(
        text(
            "SELECT day, sum(queries), sum(grounded) FROM analytics.queries_daily"
            f" WHERE {recent} GROUP BY day ORDER BY day"
        ),
        params,
    ).all()
    gaps = session.execute(
        text(
            "SELECT collection, question, times_asked, last_asked, best_score_seen, threshold"
            f" FROM analytics.knowledge_gaps WHERE {where}"
            " ORDER BY times_asked DESC, last_asked DESC LIMIT :shown"
        ),
        {**params, "shown": GAPS_SHOWN},
    ).all()
    return Daily(
        days=days,
        ingest=[IngestDay(day=d, documents=n, done=ok, failed=bad) for d, n, ok, bad in ingest],
        embedding=[
            EmbeddingDay(
                day=d, tokens=int(t or 0), estimated_cost_usd=float(c) if c is not None else None
            )
            for d, t, c in embedding
        ],
        queries=[
            QueryDay(day=d, queries=n, grounded=g, grounded_rate=(g / n) if n else None)
            for d, n, g in queries
        ],
        knowledge_gaps=[
            KnowledgeGap(
                collection=c,
                question=q,
                times_asked=n,
                last_asked=at,
                best_score_seen=score,
                threshold=threshold,
            )
            for c, q, n, at, score, threshold in gaps
        ],
    )


@router.get("/v1/analytics/daily", response_model=Daily)
def get_daily(
    caller: Admin,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    collection: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> Daily:
    """Daily series for the console's charts, from the analytics views."""
    return daily(session, caller, days, collection)
