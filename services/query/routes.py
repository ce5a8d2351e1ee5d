"""HTTP routes for queries and prompt-ready context."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from services.collections.service import get_collection
from services.deps import get_session
from services.query import service
from services.query.schemas import ContextRequest, ContextResponse, QueryRequest, QueryResponse

router = APIRouter(tags=["query"])


@router.post("/v1/collections/{name}/query", response_model=QueryResponse)
def query(name: str, body: QueryRequest, session: Session = Depends(get_session)) -> object:
    """Returns grounded passages with scores and citations, or `grounded: false`."""
    response = service.answer(session, get_collection(session, name), body)
    session.commit()  # the query log entry
    return response


@router.post("/v1/collections/{name}/context", response_model=ContextResponse)
def context(name: str, body: ContextRequest, session: Session = Depends(get_session)) -> object:
    """Returns the relevant passages packed into a token budget, each marked [n] for citing."""
    response = service.context(session, get_collection(session, name), body)
    session.commit()  # the query log entry
    return response
