"""The chat model, through the `openai` client: on its own server (GROUNDWIRE_CHAT_BASE_URL,
GROUNDWIRE_CHAT_API_KEY) or the OpenAI settings' (OPENAI_BASE_URL, OPENAI_API_KEY), so any
OpenAI-compatible server can answer (Ollama, vLLM, llama.cpp's server, LiteLLM).

The client retries timeouts, 429s and 5xx itself (GROUNDWIRE_CHAT_MAX_RETRIES, honouring
Retry-After); what is left becomes a clear error for the API's caller: 504 for a timeout,
503 with Retry-After for a rate limit, 502 for an unreachable or failing server, and
`ContextTooLong` for a prompt over the model's window (the service retries with less).
With GROUNDWIRE_CHAT_REQUESTS_PER_MINUTE / _TOKENS_PER_MINUTE set, every request first takes
its share of a budget all API processes share in Redis (the embedding provider's kind), and a
429 pauses them all for its Retry-After. The
`openai` package is imported when the first answer is asked for (a dispatcher, in
tests/unit/test_layers.py): it takes a second to import, and most API processes answer none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis

from services.api.errors import ApiError
from services.config import Settings
from services.embedding.budget import BudgetTimeout, ProviderBudget
from services.embedding.cl100k import cl100k


@dataclass
class Completion:
    """What the model said, and its tokens."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ContextTooLong(Exception):
    """The prompt is over the model's context window."""


class ChatModel:
    """Completions from the configured chat server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    @cached_property
    def budget(self) -> ProviderBudget | None:
        """The chat server's rate limits, shared by every API process through Redis."""
        settings = self.settings
        rpm, tpm = settings.chat_requests_per_minute, settings.chat_tokens_per_minute
        if rpm is None and tpm is None:
            return None
        where = f"chat|{settings.chat_base_url or settings.openai_base_url or 'openai'}"
        return ProviderBudget(
            redis.Redis.from_url(settings.broker_redis_url()),
            hashlib.sha256(where.encode()).hexdigest()[:16],
            requests_per_minute=rpm or 1_000_000,
            tokens_per_minute=tpm or 1_000_000_000,
        )

    def _take(self, messages: list[dict[str, str]]) -> None:
        """Waits for the budget to allow this request (its prompt and the longest answer)."""
        if self.budget is None:
            return
        tokens = sum(cl100k().count(m["content"]) for m in messages) + self.settings.chat_max_tokens
        try:
            self.budget.acquire(tokens, timeout=self.settings.chat_timeout_s)
        except BudgetTimeout:
            raise ApiError(
                503,
                "chat_budget_exhausted",
                "the chat model's rate limit is used up for now; retry later",
                {"Retry-After": "5"},
            ) from None

    def _openai(self) -> Any:
        if self._client is None:
            import openai

            settings = self.settings
            key = settings.chat_api_key or settings.openai_api_key
            base = settings.chat_base_url or settings.openai_base_url
            if key is None and base is None:
                raise ApiError(
                    503,
                    "chat_not_configured",
                    "no chat model is configured: set GROUNDWIRE_CHAT_BASE_URL (any"
                    " OpenAI-compatible server) or OPENAI_API_KEY",
                )
            self._client = openai.OpenAI(
                api_key=key.get_secret_value() if key is not None else "unused",
                base_url=base,
                timeout=settings.chat_timeout_s,
                max_retries=settings.chat_max_retries,
            )
        return self._client

    def _create(self, model: str, messages: list[dict[str, str]], **extra: Any) -> Any:
        self._take(messages)
        try:
            return self._send(model, messages, **extra)
        except _rate_limit_error() as error:  # every API process waits it out, not just this
            if self.budget is not None:
                response = getattr(error, "response", None)
                retry = response.headers.get("retry-after") if response is not None else None
                self.budget.pause(float(retry) if retry and _is_number(retry) else 5.0)
            raise

    def _send(self, model: str, messages: list[dict[str, str]], **extra: Any) -> Any:
        return self._openai().chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=self.settings.chat_max_tokens,
            temperature=0,
            **extra,
        )

    def complete(self, model: str, messages: list[dict[str, str]]) -> Completion:
        """One answer, whole."""
        with _errors(model):
            response = self._create(model, messages)
        usage = getattr(response, "usage", None)
        choices = getattr(response, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        return Completion(
            text=str(getattr(message, "content", None) or ""),
            model=str(getattr(response, "model", None) or model),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def stream(self, model: str, messages: list[dict[str, str]], into: Completion) -> Iterator[str]:
        """The answer's text as the model writes it; `into` gets the whole and the tokens.
        Closing the iterator (a client that left) closes the model's stream."""
        with _errors(model):
            stream = self._create(
                model, messages, stream=True, stream_options={"include_usage": True}
            )
        try:
            with _errors(model):
                for chunk in stream:
                    if chunk.usage is not None:
                        into.prompt_tokens = int(chunk.usage.prompt_tokens or 0)
                        into.completion_tokens = int(chunk.usage.completion_tokens or 0)
                    if chunk.model:
                        into.model = str(chunk.model)
                    for choice in chunk.choices or []:
                        delta = choice.delta.content if choice.delta is not None else None
                        if delta:
                            into.text += delta
                            yield delta
        finally:
            stream.close()


def _rate_limit_error() -> type[Exception]:
    import openai

    return openai.RateLimitError


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


@contextmanager
def _errors(model: str) -> Iterator[None]:
    """Turns the client's errors into the API's."""
    import openai

    name = f"the chat model {model!r}"
    try:
        yield
    except openai.APITimeoutError:
        raise ApiError(504, "chat_timeout", f"{name} did not answer in time") from None
    except openai.RateLimitError as error:
        retry = error.response.headers.get("retry-after") or "5"
        raise ApiError(
            503, "chat_rate_limited", f"{name} is rate limited; retry later", {"Retry-After": retry}
        ) from None
    except openai.APIConnectionError:
        raise ApiError(502, "chat_unreachable", f"{name}'s server is unreachable") from None
    except openai.BadRequestError as error:
        code = getattr(error, "code", None) or ""
        if code == "context_length_exceeded" or "context length" in str(error).lower():
            raise ContextTooLong(str(error)) from None
        raise ApiError(
            502, "chat_refused", f"{name} refused the request: {error.message}"
        ) from None
    except openai.NotFoundError:
        raise ApiError(502, "chat_model_not_found", f"{name} does not exist there") from None
    except openai.APIStatusError as error:
        raise ApiError(502, "chat_failed", f"{name} failed (HTTP {error.status_code})") from None
    except openai.APIError as error:  # an error event mid-stream, a reply the client cannot read
        raise ApiError(502, "chat_failed", f"{name} failed: {error.message}") from None
