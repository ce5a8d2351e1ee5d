"""Answering a query: embed the question (cached), retrieve, apply the relevance threshold."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session, object_session

from services.api.errors import ApiError
from services.api.validation import json_problem
from services.embedding import EmbeddingError, ProviderNotConfigured
from services.embedding.cl100k import cl100k
from services.metrics import observe_query
from services.models import Collection
from services.query.candidates import Candidate, Mode
from services.query.context import Span, merge_passages, pack
from services.query.filters import FilterError
from services.query.grounding import Grounding, ground
from services.query.log import QueryLogPolicy, record_query
from services.query.retrieval import SearchSpace, SpaceChanged, search
from services.query.schemas import (
    ChunkRef,
    Citation,
    CitationChunk,
    ContextRequest,
    ContextResponse,
    Passage,
    QueryRequest,
    QueryResponse,
    RetrievalRequest,
)
from services.query.vectors import QueryVectorCache
from services.rerank.service import RerankStage, chosen, rerank
from services.spaces.build import open_migration

CONTEXT_CANDIDATES = 30
SPACE_ATTEMPTS = 3


def retrieve(
    session: Session,
    vectors: QueryVectorCache,
    collection: Collection,
    question: str,
    *,
    k: int,
    mode: Mode,
    min_score: float | None,
    metadata_filter: dict[str, Any] | None,
    principals: tuple[str, ...],
    stage: RerankStage | None = None,
    space: str = "active",
) -> Grounding[Candidate]:
    """Embeds the question, retrieves the candidates the principals may read and applies the
    relevance threshold (so `best_score` too is over what they may read). With a rerank
    stage, the best `depth` candidates over the threshold are reordered before the cut to k."""
    if not question.strip():
        raise ApiError(422, "empty_query", "query is empty")
    if metadata_filter is not None:
        problem = json_problem(metadata_filter)
        if problem:
            raise ApiError(422, "invalid_filter", f"filter {problem}")
    pool = max(k, stage.depth) if stage is not None else k
    for attempt in range(SPACE_ATTEMPTS):
        try:
            candidates, threshold, embedder = _search(
                session, vectors, collection, question, pool, mode, min_score,
                metadata_filter, principals, space,
            )  # fmt: skip
            break
        except SpaceChanged:  # switched meanwhile: again, in the space it has now
            if attempt == SPACE_ATTEMPTS - 1:
                raise ApiError(
                    503,
                    "space_changed",
                    "the collection is switching spaces: try again",
                    headers={"Retry-After": "1"},
                ) from None
            session.rollback()
            owner = object_session(collection) or session  # the primary's, for a replica read
            owner.refresh(collection)
    grounding = replace(ground(candidates, threshold, pool), embedder=embedder)
    if stage is None:
        return grounding  # the pool is k
    passages, reranked = rerank(stage, question, grounding.passages)
    return replace(grounding, passages=passages[:k], reranked=reranked)


def _search(
    session: Session,
    vectors: QueryVectorCache,
    collection: Collection,
    question: str,
    pool: int,
    mode: Mode,
    min_score: float | None,
    metadata_filter: dict[str, Any] | None,
    principals: tuple[str, ...],
    space: str,
) -> tuple[list[Candidate], float, str]:
    """Embeds the question in the space asked for and searches it for `pool` candidates;
    returns them, the threshold that applies and the embedder searched."""
    searched = SearchSpace.active(collection)
    spec, dimensions, threshold = collection.embedder, collection.dimensions, collection.threshold
    if space == "shadow":
        shadow = open_migration(session, collection)
        if shadow is None:
            raise ApiError(409, "no_shadow_space", "the collection has no migration building")
        searched = SearchSpace(
            collection.id, shadow.dimensions, collection.language, shadow.id,
            storage=collection.vector_storage,
        )  # fmt: skip
        spec, dimensions = shadow.embedder, shadow.dimensions
        # not re-calibrated yet: the new embedder's default
        default = vectors.embedders.get(spec, dimensions).default_threshold
        threshold = shadow.new_threshold if shadow.new_threshold is not None else default
    try:
        vector = vectors.vector(spec, question, dimensions)
    except ProviderNotConfigured as error:
        raise ApiError(503, "provider_not_configured", str(error)) from error
    except EmbeddingError as error:
        status = 503 if error.transient else 502
        message = f"could not embed the query: {error}"
        retry = {"Retry-After": str(int(error.retry_after or 5))} if error.transient else None
        raise ApiError(status, "embedder_unavailable", message, headers=retry) from error
    threshold = min_score if min_score is not None else threshold
    try:
        candidates = search(
            session, searched, vector, question, pool, mode, metadata_filter, principals
        )
    except FilterError as error:
        raise ApiError(422, "invalid_filter", str(error)) from error
    return candidates, threshold, spec


def answer(
    session: Session,
    vectors: QueryVectorCache,
    keep: QueryLogPolicy,
    collection: Collection,
    request: QueryRequest,
    principals: tuple[str, ...] = (),
    reranker: RerankStage | None = None,
    reader: Session | None = None,
) -> QueryResponse:
    """Returns the passages scoring at least the threshold, or an explicit ungrounded answer
    (searched in `reader`, a replica's session, when given; logged in `session`)."""
    started = time.perf_counter()
    grounding = retrieve(
        reader or session,
        vectors,
        collection,
        request.query,
        k=request.k,
        mode=request.mode,
        min_score=request.min_score,
        metadata_filter=request.filter,
        principals=principals,
        stage=chosen(reranker, request.rerank, collection.rerank),
        space=request.space,
    )
    log_request(session, keep, collection, "query", request, request.k, grounding, started)
    return QueryResponse(
        grounded=grounding.grounded,
        mode=request.mode,
        threshold=grounding.threshold,
        best_score=grounding.best_score,
        reranked=grounding.reranked,
        embedder=grounding.embedder,
        results=[
            Passage(
                document_id=c.document_id,
                title=c.title,
                source=c.source,
                text=c.text,
                score=c.score,
                rank_score=c.rank_score,
                rerank_score=c.rerank_score,
                chunk=ChunkRef(ordinal=c.ordinal, start=c.start, end=c.end, location=c.location),
                location=c.location,
                metadata=c.metadata,
            )
            for c in grounding.passages
        ],
    )


def log_request(
    session: Session,
    keep: QueryLogPolicy,
    collection: Collection,
    endpoint: str,
    request: RetrievalRequest,
    k: int,
    grounding: Grounding[Candidate],
    started: float,
    answer: dict[str, Any] | None = None,
) -> None:
    """Records the request in the query log (in the session's transaction) and the metrics;
    a trial of a shadow space only in the metrics."""
    latency_ms = (time.perf_counter() - started) * 1000
    if request.space == "shadow":
        observe_query(endpoint, request.mode, grounding.grounded, latency_ms / 1000)
        return
    record_query(
        session,
        keep=keep,
        collection_id=collection.id,
        endpoint=endpoint,
        question=request.query,
        mode=request.mode,
        k=k,
        metadata_filter=request.filter,
        best_score=grounding.best_score,
        threshold=grounding.threshold,
        grounded=grounding.grounded,
        results=len(grounding.passages),
        latency_ms=latency_ms,
        reranked=grounding.reranked,
        answer=answer,
    )
    observe_query(endpoint, request.mode, grounding.grounded, latency_ms / 1000)


def context(
    session: Session,
    vectors: QueryVectorCache,
    keep: QueryLogPolicy,
    collection: Collection,
    request: ContextRequest,
    principals: tuple[str, ...] = (),
    reranker: RerankStage | None = None,
    reader: Session | None = None,
) -> ContextResponse:
    """Packs the relevant passages into a cited context within `max_tokens` (cl100k tokens),
    searched in `reader` when given and logged in `session`."""
    started = time.perf_counter()
    packed = packed_context(
        reader or session,
        vectors,
        collection,
        request,
        request.max_tokens,
        principals,
        reranker=reranker,
    )
    log_request(
        session, keep, collection, "context", request, CONTEXT_CANDIDATES, packed.grounding, started
    )
    return packed.response


@dataclass(frozen=True)
class Packed:
    """A context as the API shows it, the passages behind each `[n]`, and the retrieval."""

    response: ContextResponse
    spans: dict[int, Span]
    grounding: Grounding[Candidate]


def packed_context(
    session: Session,
    vectors: QueryVectorCache,
    collection: Collection,
    request: RetrievalRequest,
    max_tokens: int,
    principals: tuple[str, ...] = (),
    candidates: int = CONTEXT_CANDIDATES,
    reranker: RerankStage | None = None,
) -> Packed:
    """Retrieves and packs the context, logging nothing (the caller logs what it did)."""
    grounding = retrieve(
        session,
        vectors,
        collection,
        request.query,
        k=candidates,
        mode=request.mode,
        min_score=request.min_score,
        metadata_filter=request.filter,
        principals=principals,
        stage=chosen(reranker, request.rerank, collection.rerank),
        space=request.space,
    )
    tokens = cl100k()
    packed = pack(merge_passages(grounding.passages), max_tokens, tokens.count)
    text = "\n\n".join(block for _, _, block in packed)
    response = ContextResponse(
        grounded=bool(packed),
        threshold=grounding.threshold,
        best_score=grounding.best_score,
        reranked=grounding.reranked,
        embedder=grounding.embedder,
        context=text,
        tokens=tokens.count(text) if text else 0,
        citations=[
            Citation(
                n=n,
                document_id=span.document_id,
                title=span.title,
                source=span.source,
                score=span.score,
                chunk=CitationChunk(
                    ordinals=list(span.ordinals),
                    start=span.start,
                    end=span.end,
                    location=span.location,
                ),
                location=span.location,
            )
            for n, span, _ in packed
        ],
    )
    return Packed(response, {n: span for n, span, _ in packed}, grounding)
