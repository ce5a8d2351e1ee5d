"""What travels from the parse-and-chunk stage to the embedding stage, and how it is batched.

An embedding task carries the chunks of one or more documents of one collection: derived data
that the document row can always reproduce. If the message is lost (a Redis restart), the
document stays `processing` until its lease runs out and the sweeper starts it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from services.batching import pack
from workers.chunking import Chunk


@dataclass(frozen=True)
class DocumentWork:
    """One claimed document version, chunked, with the lease token that may write it."""

    id: int
    version: int
    owner: uuid.UUID
    collection_id: int
    embedder: str  # the collection's embedder spec
    dimensions: int
    language: str
    chunks: tuple[Chunk, ...]
    # Where each chunk sits in its original (a page, a time span), None where it has none.
    locations: tuple[dict[str, Any] | None, ...] = ()
    # The collection's space generation the embedder and chunking are of: a write under an
    # earlier one (the collection switched spaces meanwhile) is refused.
    generation: int = 0

    def location(self, ordinal: int) -> dict[str, Any] | None:
        """The location of chunk `ordinal`, if it has one."""
        return self.locations[ordinal] if ordinal < len(self.locations) else None

    def to_message(self) -> dict[str, Any]:
        """Returns a JSON-ready form of this work."""
        return {
            "id": self.id,
            "version": self.version,
            "owner": str(self.owner),
            "collection_id": self.collection_id,
            "embedder": self.embedder,
            "dimensions": self.dimensions,
            "language": self.language,
            "chunks": [[c.text, c.start, c.end, c.token_count] for c in self.chunks],
            "locations": list(self.locations),
            "generation": self.generation,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> DocumentWork:
        """Rebuilds work from `to_message`'s form."""
        return cls(
            id=int(message["id"]),
            version=int(message["version"]),
            owner=uuid.UUID(message["owner"]),
            collection_id=int(message["collection_id"]),
            # "space" is what earlier versions called the embedder spec in flight.
            embedder=str(message.get("embedder", message.get("space"))),
            dimensions=int(message["dimensions"]),
            language=str(message["language"]),
            chunks=tuple(Chunk(str(t), int(s), int(e), int(n)) for t, s, e, n in message["chunks"]),
            locations=tuple(message.get("locations") or ()),
            generation=int(message.get("generation", 0)),
        )


def embedding_batches(
    works: Sequence[DocumentWork], missing: dict[int, int], max_inputs: dict[int, int]
) -> Iterator[list[DocumentWork]]:
    """Groups documents into tasks of one collection and at most its `max_inputs` texts to embed.

    `missing` gives each document's count of texts the cache lacks. Documents are never split:
    a document with more texts than `max_inputs` travels alone (the embedder still splits it
    into requests inside the provider's limits). Collections never share a task.
    """
    by_collection: dict[int, list[DocumentWork]] = {}
    for work in works:
        by_collection.setdefault(work.collection_id, []).append(work)
    for collection_id, group in by_collection.items():
        yield from pack(
            group, lambda w: missing.get(w.id, 0), len(group), max_inputs[collection_id]
        )
