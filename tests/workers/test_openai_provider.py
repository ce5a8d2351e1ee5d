"""The real `openai` client against a local OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from services.config import Settings
from services.embedding import PermanentEmbeddingError, TransientEmbeddingError
from services.embedding.openai_provider import OpenAIEmbedder
from tests.support.api import ingest, query, wait_finished
from tests.support.openai_server import embed as reference_vector


def embedder(fake: Any, **limits: Any) -> OpenAIEmbedder:
    settings = Settings(
        openai_base_url=fake.base_url,
        openai_api_key="test-key",
        openai_max_retries=3,
        openai_timeout_s=10,
        **limits,
    )
    return OpenAIEmbedder("fake-embedding-model", settings)


def test_batches_stay_within_provider_limits(fake_openai: Any) -> None:
    fake_openai.reset(dimensions=32, max_inputs=5, max_tokens_per_request=120)
    subject = embedder(
        fake_openai, openai_max_inputs_per_request=5, openai_max_tokens_per_request=120
    )
    fake_openai.reset(dimensions=32, max_inputs=5, max_tokens_per_request=120)
    texts = [f"document number {i} " + "word " * (i % 17) for i in range(23)]
    vectors = subject.embed(texts)
    seen = fake_openai.requests
    assert all(r.status == 200 for r in seen), seen
    assert all(r.inputs <= 5 and r.tokens <= 120 for r in seen)
    assert sum(r.inputs for r in seen) == 23 and len(seen) >= 5
    expected = np.array([reference_vector(t, 32) for t in texts])
    assert np.allclose(vectors, expected, atol=1e-5)


def test_rate_limit_with_retry_after_is_retried(fake_openai: Any) -> None:
    fake_openai.reset(dimensions=16)
    subject = embedder(fake_openai)
    fake_openai.reset(dimensions=16, rate_limit_next=2, retry_after_s=0.4)
    started = time.monotonic()
    (vector,) = subject.embed(["retry me"])
    elapsed = time.monotonic() - started
    assert [r.status for r in fake_openai.requests] == [429, 429, 200]
    assert elapsed >= 0.8, "the client waited as long as Retry-After asked"
    assert np.allclose(vector, reference_vector("retry me", 16), atol=1e-5)


def test_exhausted_rate_limit_is_transient(fake_openai: Any) -> None:
    fake_openai.reset(dimensions=16)
    subject = embedder(fake_openai)
    fake_openai.reset(dimensions=16, rate_limit_next=10, retry_after_s=0.05)
    with pytest.raises(TransientEmbeddingError) as caught:
        subject.embed(["still limited"])
    assert caught.value.retry_after == pytest.approx(0.05)
    assert len(fake_openai.requests) == 4  # the first try and three retries


def test_rejected_input_is_permanent(fake_openai: Any) -> None:
    fake_openai.reset(dimensions=16, reject_marker="POISON")
    subject = embedder(fake_openai)
    with pytest.raises(PermanentEmbeddingError):
        subject.embed(["fine", "POISON pill"])


@pytest.mark.usefixtures("worker")
def test_openai_collection_round_trip(api: Any, fake_openai: Any, make_collection: Any) -> None:
    fake_openai.reset(dimensions=64)
    name = make_collection("openai:fake-embedding-model", chunk_tokens=64)
    docs = [
        {"id": "glaciers", "text": "Glaciers carve valleys as ice flows slowly downhill."},
        {"id": "markets", "text": "Bond markets price interest rate expectations daily."},
    ]
    wait_finished(api, ingest(api, name, docs)["batch_id"])
    answer = query(api, name, "how do glaciers carve valleys")
    assert answer["grounded"] and answer["results"][0]["document_id"] == "glaciers"
    assert all(r.status == 200 for r in fake_openai.requests)


@pytest.mark.usefixtures("worker")
def test_rejected_document_fails_with_reason(
    api: Any, fake_openai: Any, make_collection: Any
) -> None:
    fake_openai.reset(dimensions=64)
    name = make_collection("openai:fake-embedding-model")
    fake_openai.reset(dimensions=64, reject_marker="POISON")
    batch = wait_finished(
        api,
        ingest(api, name, [{"id": "bad", "text": "a POISON input"}])["batch_id"],
        allow_failed=True,
    )
    assert batch["failed"] == 1
    doc = api.get(f"/v1/collections/{name}/documents/bad").json()
    assert doc["status"] == "failed" and "rejected" in doc["error"]
