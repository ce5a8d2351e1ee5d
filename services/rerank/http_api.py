"""A `/rerank` API over HTTP, in the request format of Hugging Face's text-embeddings-inference
(`tei`), Cohere (`cohere`, v1 and v2) or Jina (`jina`); vLLM and Infinity serve the last two.

TEI takes `{"query", "texts"}` and answers `[{"index", "score"}]`; Cohere and Jina take
`{"model", "query", "documents", "top_n"}` and answer `{"results": [{"index",
"relevance_score"}]}`. A server error, a refusal, a malformed answer or the budget running
out raise RerankError; the caller keeps the retrieval order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from services.rerank.base import RerankError, remaining

Format = Literal["tei", "cohere", "jina"]
# Texts per request: TEI refuses more than its --max-client-batch-size (32 by default).
BATCH = 32


def request_body(
    fmt: Format, model: str | None, query: str, texts: Sequence[str]
) -> dict[str, Any]:
    """The JSON body asking `fmt`'s server to score `texts` against `query`."""
    if fmt == "tei":
        return {"query": query, "texts": list(texts), "truncate": True, "raw_scores": False}
    body: dict[str, Any] = {"query": query, "documents": list(texts), "top_n": len(texts)}
    if model:
        body["model"] = model
    if fmt == "jina":
        body["return_documents"] = False
    return body


def parse_scores(fmt: Format, answer: Any, count: int) -> list[float]:
    """The score of each of the `count` texts from the server's answer, in the texts' order."""
    items = (
        answer
        if fmt == "tei"
        else (answer or {}).get("results")
        if isinstance(answer, dict)
        else None
    )
    if not isinstance(items, list):
        raise RerankError("invalid", f"the rerank answer is not a {fmt} answer")
    field = "score" if fmt == "tei" else "relevance_score"
    scores: list[float | None] = [None] * count
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get(field) if isinstance(item, dict) else None
        if (
            not isinstance(index, int)
            or isinstance(index, bool)
            or not 0 <= index < count
            or not isinstance(score, int | float)
            or isinstance(score, bool)
            or not math.isfinite(score)
        ):
            raise RerankError("invalid", f"the rerank answer has an invalid result: {item!r:.200}")
        scores[index] = float(score)
    missing = [i for i, s in enumerate(scores) if s is None]
    if missing:
        raise RerankError(
            "invalid", f"the rerank answer leaves out {len(missing)} of {count} texts"
        )
    return [s for s in scores if s is not None]


class HttpReranker:
    """Scores through a `/rerank` endpoint, with one connection pool per process."""

    def __init__(
        self, url: str, fmt: Format, model: str | None = None, api_key: str | None = None
    ) -> None:
        self.url = url
        self.format: Format = fmt
        self.model = model
        self.name = f"{fmt}:{model or url}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, follow_redirects=False)

    def scores(self, query: str, texts: Sequence[str], deadline: float) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(texts), BATCH):
            group = texts[start : start + BATCH]
            scores.extend(self._score(query, group, deadline))
        return scores

    def _score(self, query: str, texts: Sequence[str], deadline: float) -> list[float]:
        body = request_body(self.format, self.model, query, texts)
        try:
            response = self._client.post(
                self.url, json=body, timeout=httpx.Timeout(remaining(deadline))
            )
        except httpx.TimeoutException as error:
            raise RerankError("timeout", f"the rerank server took too long: {error}") from error
        except httpx.HTTPError as error:
            raise RerankError(
                "unavailable", f"the rerank server is unreachable: {error}"
            ) from error
        if response.status_code != 200:
            raise RerankError(
                "unavailable",
                f"the rerank server answered {response.status_code}: {response.text[:200]}",
            )
        try:
            answer = response.json()
        except ValueError as error:
            raise RerankError("invalid", "the rerank server's answer is not JSON") from error
        return parse_scores(self.format, answer, len(texts))

    def close(self) -> None:
        self._client.close()
