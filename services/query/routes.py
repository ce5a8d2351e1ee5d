"""HTTP routes for queries and prompt-ready context."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.api.deps import (
    CollectionDep,
    Reader,
    ReaderDep,
    RerankDep,
    SessionDep,
    SettingsDep,
)
from services.api.errors import error_responses
from services.api.ratelimit import QueryLimit
from services.query import service
from services.query.schemas import ContextRequest, ContextResponse, QueryRequest, QueryResponse
from services.query.vectors import QueryVectorCache

router = APIRouter(
    tags=["query"], responses=error_responses(400, 401, 403, 404, 413, 422, 429, 502, 503)
)


def get_query_vectors(request: Request) -> QueryVectorCache:
    """Returns the question-vector cache the app's lifespan built."""
    cache: QueryVectorCache = request.app.state.query_vectors
    return cache


QueryVectorsDep = Annotated[QueryVectorCache, Depends(get_query_vectors)]


@router.post("/v1/collections/{name}/query", response_model=QueryResponse)
def query(
    caller: Reader,
    _: QueryLimit,
    collection: CollectionDep,
    body: QueryRequest,
    session: SessionDep,
    vectors: QueryVectorsDep,
    settings: SettingsDep,
    reranker: RerankDep,
    reader: ReaderDep,
) -> QueryResponse:
    """Returns grounded passages with scores and citations, or `grounded: false`."""
    principals = caller.reader_principals(body.principals)
    response = service.answer(
        session, vectors, settings.query_log, collection, body, principals, reranker, reader
    )
    session.commit()  # the query log entry
    return response


@router.post("/v1/collections/{name}/context", response_model=ContextResponse)
def context(
    caller: Reader,
    _: QueryLimit,
    collection: CollectionDep,
    body: ContextRequest,
    session: SessionDep,
    vectors: QueryVectorsDep,
    settings: SettingsDep,
    reranker: RerankDep,
    reader: ReaderDep,
) -> ContextResponse:
    """Returns the relevant passages packed into a token budget, each marked [n] for citing."""
    principals = caller.reader_principals(body.principals)
    response = service.context(
        session, vectors, settings.query_log, collection, body, principals, reranker, reader
    )
    session.commit()  # the query log entry
    return response
