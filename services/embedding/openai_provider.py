"""Embeddings from OpenAI or any OpenAI-compatible server, through the official `openai` client.

Inputs are packed into requests that stay inside the provider's limits (inputs per request,
tokens per request, tokens per input), counted with tiktoken. With a requests/tokens-per-minute
budget configured, every request first takes its share from the budget all workers share in
Redis. A 429 becomes waiting: it pauses every worker for its Retry-After, then the request is
sent again; connection errors, timeouts and 5xx are retried with backoff. What still fails
after `openai_max_retries` is classified as transient or permanent for the task's retry policy.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any

import numpy as np
import openai
import redis

from services.config import Settings
from services.embedding.base import (
    EmbeddingError,
    PermanentEmbeddingError,
    ProviderNotConfigured,
    TokenSpans,
    TransientEmbeddingError,
    Vectors,
    normalise,
    require_non_empty,
)
from services.embedding.budget import BudgetTimeout, ProviderBudget
from services.embedding.cl100k import TiktokenSpans
from services.embedding.requests import RequestLog, RequestRecord, Timer, outcome_of

PROBE_TEXT = "dimension probe"
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def plan_requests(
    token_counts: list[int], *, max_inputs: int, max_tokens: int, max_tokens_per_input: int
) -> Iterator[range]:
    """Yields consecutive index ranges, each one request inside the provider's limits."""
    start, tokens = 0, 0
    for i, count in enumerate(token_counts):
        if count > max_tokens_per_input:
            raise PermanentEmbeddingError(
                f"input {i} has {count} tokens, over the provider's {max_tokens_per_input}"
            )
        if i > start and (i - start >= max_inputs or tokens + count > max_tokens):
            yield range(start, i)
            start, tokens = i, 0
        tokens += count
    if start < len(token_counts):
        yield range(start, len(token_counts))


_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def describe(error: openai.OpenAIError) -> str:
    """What went wrong, as callers may see it: the HTTP status and the provider's error code,
    never its message (a provider's messages quote keys, partly masked, and inputs)."""
    if isinstance(error, openai.APITimeoutError):
        return "timed out"
    if isinstance(error, openai.APIConnectionError):
        return "could not connect"
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        code = body.get("code") or body.get("type")
        known = isinstance(code, str) and _ERROR_CODE.fullmatch(code)
        return f"HTTP {error.status_code}" + (f" ({code})" if known else "")
    return type(error).__name__


def classify(error: openai.OpenAIError) -> EmbeddingError:
    """Maps a client error to a transient or permanent embedding error."""
    what = describe(error)
    if isinstance(error, openai.RateLimitError):
        body = error.body if isinstance(error.body, dict) else {}
        if body.get("code") == "insufficient_quota" or body.get("type") == "insufficient_quota":
            return PermanentEmbeddingError(f"provider quota exhausted: {what}")
        retry_after = error.response.headers.get("retry-after")
        return TransientEmbeddingError(f"rate limited: {what}", retry_after=_seconds(retry_after))
    if isinstance(error, openai.APIConnectionError | openai.InternalServerError):
        return TransientEmbeddingError(f"provider unavailable: {what}")
    if isinstance(error, openai.APIStatusError) and error.status_code in (408, 409):
        return TransientEmbeddingError(f"provider asked to retry: {what}")
    return PermanentEmbeddingError(f"provider rejected the request: {what}")


def _seconds(header: str | None) -> float | None:
    try:
        value = float(header) if header else None
    except ValueError:  # an HTTP date, or nonsense
        return None
    return value if value is not None and 0 <= value < 86_400 else None


class OpenAIEmbedder:
    """Embeddings from `model` at the configured OpenAI-compatible endpoint."""

    default_threshold = 0.3
    default_chunk_tokens = 512

    def __init__(
        self,
        model: str,
        settings: Settings,
        *,
        client: openai.OpenAI | None = None,
        dimensions: int | None = None,
    ):
        if client is None and settings.openai_api_key is None and settings.openai_base_url is None:
            raise ProviderNotConfigured(
                f"'openai:{model}' needs a provider: set OPENAI_API_KEY (or OPENAI_BASE_URL for"
                " an OpenAI-compatible server) where Groundwire runs"
            )
        self.model = model
        self.settings = settings
        self.spec = f"openai:{model}"
        self.max_input_tokens = settings.openai_max_tokens_per_input
        self.tiktoken = TiktokenSpans()
        self.tokenizer: TokenSpans = self.tiktoken
        self._client = client
        self.batch_inputs = settings.openai_batch_inputs
        # A provider bills and limits per request: its tasks take many documents, whose chunks
        # then fill requests (local embedders take fewer, so small loads use every process).
        self.documents_per_task = settings.openai_ingest_batch_documents
        self.requests = RequestLog()
        dims = dimensions or settings.openai_dimensions or KNOWN_DIMENSIONS.get(model)
        self.dimensions = dims if dims is not None else self._probe_dimensions()
        self.space = f"openai:{model}:{self.dimensions}"

    @cached_property
    def client(self) -> openai.OpenAI:
        """The `openai` client, built from settings unless one was injected."""
        if self._client is not None:
            return self._client
        key = self.settings.openai_api_key  # one of the two is set: see __init__
        return openai.OpenAI(
            api_key=key.get_secret_value() if key else "unused",
            base_url=self.settings.openai_base_url,
            timeout=self.settings.openai_timeout_s,
            max_retries=0,  # retries happen in _request, where 429s pause the shared budget
        )

    @cached_property
    def budget(self) -> ProviderBudget | None:
        """The budget shared by all workers for this provider and model, if one is configured."""
        rpm, tpm = self.settings.openai_requests_per_minute, self.settings.openai_tokens_per_minute
        if rpm is None and tpm is None:
            return None
        where = f"{self.settings.openai_base_url or 'openai'}|{self.model}"
        return ProviderBudget(
            redis.Redis.from_url(self.settings.broker_redis_url()),
            hashlib.sha256(where.encode()).hexdigest()[:16],
            requests_per_minute=rpm or 1_000_000,
            tokens_per_minute=tpm or 1_000_000_000,
        )

    def _probe_dimensions(self) -> int:
        return int(self._request([PROBE_TEXT], record=False).shape[1])

    def embed(self, texts: list[str]) -> Vectors:
        """Returns one normalised vector per text, in as few requests as the limits allow."""
        require_non_empty(texts)
        counts = [self.tiktoken.count(t) for t in texts]
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for part in plan_requests(
            counts,
            max_inputs=self.settings.openai_max_inputs_per_request,
            max_tokens=self.settings.openai_max_tokens_per_request,
            max_tokens_per_input=self.max_input_tokens,
        ):
            tokens = sum(counts[part.start : part.stop])
            out[part.start : part.stop] = self._request(texts[part.start : part.stop], tokens)
        return out

    def _request(self, texts: list[str], tokens: int = 1, *, record: bool = True) -> Vectors:
        kwargs: dict[str, Any] = {"model": self.model, "input": texts}
        if self.settings.openai_dimensions:
            kwargs["dimensions"] = self.settings.openai_dimensions
        timer, attempt, rate_limited = Timer(), 0, 0

        def log(failure: EmbeddingError | None = None) -> None:
            if not record:  # the dimension probe is not embedding work
                return
            self.requests.add(
                RequestRecord(
                    timer.started,
                    len(texts),
                    tokens,
                    timer.ms(),
                    outcome_of(attempt + 1, rate_limited, failure is not None),
                    attempts=attempt + 1,
                    rate_limited=rate_limited,
                    error=str(failure)[:500] if failure is not None else None,
                )
            )

        while True:
            try:
                if self.budget is not None:
                    self.budget.acquire(tokens)
                raw = self.client.embeddings.with_raw_response.create(**kwargs)
                if self.budget is not None:
                    self.budget.observe(raw.headers)
                response = raw.parse()
                break
            except BudgetTimeout as error:
                timeout = TransientEmbeddingError(str(error))
                log(timeout)
                raise timeout from error
            except openai.OpenAIError as error:
                failure = classify(error)
                if isinstance(error, openai.RateLimitError):
                    rate_limited += 1
                if not failure.transient or attempt >= self.settings.openai_max_retries:
                    log(failure)
                    raise failure from error
                delay = failure.retry_after or min(30.0, 0.5 * 2**attempt) * random.uniform(1, 1.5)
                if isinstance(error, openai.RateLimitError) and self.budget is not None:
                    self.budget.pause(delay)  # every worker waits, not only this one
                else:
                    time.sleep(delay)
                attempt += 1
        log()
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise TransientEmbeddingError(f"provider returned {len(rows)} vectors for {len(texts)}")
        vectors = np.array([r.embedding for r in rows], dtype=np.float32)
        if vectors.shape[1] != getattr(self, "dimensions", vectors.shape[1]):
            raise PermanentEmbeddingError(
                f"provider returned {vectors.shape[1]}-dimensional vectors for {self.model};"
                f" the collection's embedding space has {self.dimensions}"
            )
        return normalise(vectors)
