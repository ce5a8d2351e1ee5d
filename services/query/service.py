"""Answering a query: embed the question (cached), retrieve, apply the relevance threshold."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from sqlalchemy.orm import Session

from services.embedding import EmbeddingError, get_embedder
from services.embedding.base import Vectors
from services.errors import ApiError
from services.models import Collection
from services.query.grounding import ground
from services.query.retrieval import search
from services.query.schemas import ChunkRef, Passage, QueryRequest, QueryResponse


class QueryVectorCache:
    """A small LRU of question vectors per embedding space: repeated questions skip the model."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = Lock()

    def vector(self, spec: str, question: str) -> Vectors:
        """Returns the question's vector in the space of embedder `spec`."""
        embedder = get_embedder(spec)
        key = (embedder.space, question)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        vector = embedder.embed([question])[0]
        with self._lock:
            self._items[key] = vector
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return vector


_cache = QueryVectorCache()


def answer(session: Session, collection: Collection, request: QueryRequest) -> QueryResponse:
    """Returns the passages scoring at least the threshold, or an explicit ungrounded answer."""
    if not request.query.strip():
        raise ApiError(422, "empty_query", "query is empty")
    try:
        vector = _cache.vector(collection.embedder, request.query)
    except EmbeddingError as error:
        status = 503 if error.transient else 502
        raise ApiError(
            status, "embedder_unavailable", f"could not embed the query: {error}"
        ) from error
    threshold = request.min_score if request.min_score is not None else collection.threshold
    candidates = search(session, collection, vector, request.k)
    grounding = ground(candidates, threshold, request.k)
    return QueryResponse(
        grounded=grounding.grounded,
        threshold=grounding.threshold,
        best_score=grounding.best_score,
        results=[
            Passage(
                document_id=c.document_id,
                title=c.title,
                source=c.source,
                text=c.text,
                score=c.score,
                chunk=ChunkRef(ordinal=c.ordinal, start=c.start, end=c.end),
                metadata=c.metadata,
            )
            for c in grounding.passages
        ],
    )
