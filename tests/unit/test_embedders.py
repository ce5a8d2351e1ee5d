"""The hash and local embedders, and the OpenAI request planner."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from services.config import Settings
from services.embedding import EmbedderRegistry, PermanentEmbeddingError, UnknownEmbedder
from services.embedding.hash import HashEmbedder, _words
from services.embedding.local import LocalEmbedder
from services.embedding.openai_provider import plan_requests
from services.embedding.registry import parse_embedder_spec


def test_hash_embedder_is_stable_and_unit_length() -> None:
    embedder = HashEmbedder()
    a, b = embedder.embed(["Volcanic basalt", "volcanic BASALT"])
    assert np.allclose(a, b) and np.isclose(np.linalg.norm(a), 1.0)
    # A fixed value: the same on every machine and Python version (no salted hash()).
    assert int(np.flatnonzero(HashEmbedder().embed(["basalt"])[0])[0]) == 197


def test_hash_embedder_never_returns_zero_vectors() -> None:
    (vector,) = HashEmbedder().embed(["the of and"])
    assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_empty_input_is_never_embedded() -> None:
    with pytest.raises(PermanentEmbeddingError):
        HashEmbedder().embed(["fine", "   "])


def test_local_embedder_captures_meaning() -> None:
    embedder = LocalEmbedder(threads=1)
    cat, feline, revenue = embedder.embed(
        ["The cat sat on the mat.", "A feline rested on a rug.", "Quarterly revenue grew 10%."]
    )
    assert cat.shape == (384,)
    assert np.isclose(np.linalg.norm(cat), 1.0, atol=1e-5)
    assert float(cat @ feline) > float(cat @ revenue) + 0.3


def test_plan_requests_respects_every_limit() -> None:
    counts = [100] * 10 + [5000] + [1] * 7
    plans = list(plan_requests(counts, max_inputs=4, max_tokens=5200, max_tokens_per_input=8192))
    assert [i for r in plans for i in r] == list(range(len(counts)))
    for r in plans:
        assert len(r) <= 4 and sum(counts[i] for i in r) <= 5200


def test_plan_requests_rejects_oversized_input() -> None:
    with pytest.raises(PermanentEmbeddingError):
        list(
            plan_requests([10, 9000], max_inputs=10, max_tokens=100_000, max_tokens_per_input=8192)
        )


def test_hash_embedder_takes_its_width_from_the_spec() -> None:
    embedders = EmbedderRegistry(Settings())
    wide = embedders.get("hash:768")
    assert (wide.dimensions, wide.space, wide.spec) == (768, "hash:v1:768", "hash:768")
    assert wide.embed(["tide tables"]).shape == (1, 768)
    assert embedders.get("hash").dimensions == 256
    assert embedders.get("hash:768") is wide, "one instance per spec and registry"
    for bad in ("hash:8", "hash:4096", "hash:wide"):
        with pytest.raises(UnknownEmbedder):
            parse_embedder_spec(bad)


def test_hash_embedder_words_are_what_the_regular_expression_finds() -> None:
    # Words are found by byte translation (fast); the space `hash:v1` is defined by `\w+`
    # over the lower-cased text, hashed as UTF-8, so both must agree on every text.
    pattern = re.compile(r"\w+")
    alphabet = "ab Z9_-.,'\n\t\x1c\x85\xa0é中ß٣\u2028²😀\u2019—\u0301İ\ud800"
    rng = random.Random(11)
    texts = ["naïve café, 東京 — ok?", "plain ascii words", "\u2019quoted\u2019 İstanbul"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2000)]
    for text in texts:
        lowered = text.lower()
        found = [w if isinstance(w, str) else w.decode("utf-8") for w in _words(lowered)]
        assert found == pattern.findall(lowered), text


def test_each_embedder_declares_its_policy() -> None:
    settings = Settings(
        ingest_batch_documents=7,
        openai_ingest_batch_documents=300,
        openai_base_url="http://127.0.0.1:9/v1",  # configured; never called here
    )
    embedders = EmbedderRegistry(settings)
    local, hashed = embedders.get("local"), embedders.get("hash")
    provider = embedders.get("openai:text-embedding-3-small")
    assert (local.default_chunk_tokens, local.documents_per_task) == (200, 7)
    assert (hashed.default_chunk_tokens, hashed.documents_per_task) == (512, 7)
    assert (provider.default_chunk_tokens, provider.documents_per_task) == (512, 300)
    assert provider.batch_inputs == settings.openai_batch_inputs
    assert local.batch_inputs == settings.local_batch_inputs
