"""Question vectors, cached: repeated questions skip the model."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from services.embedding import EmbedderRegistry, Vectors


class QueryVectorCache:
    """A small LRU of question vectors per embedding space, over one process's embedders."""

    def __init__(self, embedders: EmbedderRegistry, size: int = 1024) -> None:
        self.embedders = embedders
        self.size = size
        self._items: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = Lock()

    def vector(self, spec: str, question: str, dimensions: int | None = None) -> Vectors:
        """Returns the question's vector in the space of embedder `spec`."""
        embedder = self.embedders.get(spec, dimensions)
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
