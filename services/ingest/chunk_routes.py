"""A document's extracted text and how it was chunked: what the console's document browser
shows. Registered before the documents router, whose `{document_id:path}` would take the
`/chunks` suffix as part of an id."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import null, select

from services.api.deps import CollectionDep, Reader, SessionDep
from services.api.errors import error_responses
from services.embedding.registry import parse_embedder_spec
from services.ingest import service
from services.ingest.schemas import DocumentOut
from services.models import Chunk, EmbeddingPrice
from services.query.schemas import LOCATION_DESCRIPTION, Location

router = APIRouter(tags=["documents"], responses=error_responses(401, 403, 404))

MAX_CHUNKS = 5000


class ChunkOut(BaseModel):
    """One searchable chunk: where it sits in the text, its tokens and what they cost."""

    ordinal: int
    start: int = Field(description="character offset in `text` where the chunk begins")
    end: int = Field(description="character offset where it ends (exclusive)")
    tokens: int
    location: Location = Field(description=LOCATION_DESCRIPTION)
    cost_usd: float | None = Field(
        description="its tokens at the embedder's recorded price (null: no price recorded);"
        " a chunk the embedding cache answered cost nothing when it was written"
    )
    text: str | None = Field(
        default=None, description="the chunk's own text, given when `stale` (else: see offsets)"
    )


class DocumentChunks(BaseModel):
    """A document, the text extracted from it (what was chunked) and its chunks."""

    document: DocumentOut
    text: str = Field(description="the latest version's extracted text (offsets count code points)")
    stale: bool = Field(
        description="the searchable chunks are of an earlier version than `text` (a newer one"
        " waits or failed): their offsets are into that version, so each carries its text"
    )
    chunks: list[ChunkOut]
    truncated: bool = Field(description=f"more than {MAX_CHUNKS} chunks: the first shown")
    usd_per_million_tokens: float | None


def _price(session: Any, embedder: str) -> Decimal | None:
    kind, model = parse_embedder_spec(embedder)
    if model is None:
        return None
    return session.scalar(
        select(EmbeddingPrice.usd_per_million_tokens).where(
            EmbeddingPrice.provider == kind, EmbeddingPrice.model == model
        )
    )


@router.get(
    "/v1/collections/{name}/documents/{document_id:path}/chunks", response_model=DocumentChunks
)
def document_chunks(
    caller: Reader, collection: CollectionDep, document_id: str, session: SessionDep
) -> DocumentChunks:
    """The document's extracted text with its searchable chunks marked (offsets into the
    text, tokens, page or time, cost)."""
    document = service.get_document(session, collection, document_id, service.readable_by(caller))
    stale = document.indexed_version is not None and document.indexed_version != document.version
    rows = session.execute(
        select(
            Chunk.ordinal,
            Chunk.char_start,
            Chunk.char_end,
            Chunk.token_count,
            Chunk.location,
            Chunk.text if stale else null(),
        )
        .where(
            Chunk.collection_id == collection.id,
            Chunk.document_id == document.id,
            Chunk.doc_version == document.indexed_version,
        )
        .order_by(Chunk.ordinal)
        .limit(MAX_CHUNKS + 1)
    ).all()
    price = _price(session, collection.embedder)
    per_token = float(price) / 1e6 if price is not None else None
    chunks = [
        ChunkOut(
            ordinal=ordinal,
            start=start,
            end=end,
            tokens=tokens,
            location=location,
            cost_usd=tokens * per_token if per_token is not None else None,
            text=chunk_text,
        )
        for ordinal, start, end, tokens, location, chunk_text in rows[:MAX_CHUNKS]
    ]
    return DocumentChunks(
        document=service.document_out(document),
        text=document.content,
        stale=stale,
        chunks=chunks,
        truncated=len(rows) > MAX_CHUNKS,
        usd_per_million_tokens=float(price) if price is not None else None,
    )
