"""Embedding batches: documents of one collection share a task up to the provider's input
budget, are never split, and survive the trip through a message unchanged."""

from __future__ import annotations

import uuid

from services.broker import groups
from workers.chunking import Chunk
from workers.work import DocumentWork, embedding_batches

OWNER = uuid.UUID(int=7)


def work(doc_id: int, collection_id: int, texts: int) -> DocumentWork:
    chunks = tuple(Chunk(f"text {doc_id}.{i}", i * 10, i * 10 + 9, 3) for i in range(texts))
    return DocumentWork(doc_id, 2, OWNER, collection_id, "hash", 256, "english", chunks)


def test_documents_fill_batches_up_to_the_input_budget() -> None:
    works = [work(i, 1, 3) for i in range(7)]
    batches = list(embedding_batches(works, {w.id: 3 for w in works}, {1: 10}))
    assert [[w.id for w in b] for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_large_document_travels_alone_and_whole() -> None:
    works = [work(1, 1, 2), work(2, 1, 50), work(3, 1, 2)]
    missing = {1: 2, 2: 50, 3: 2}
    batches = list(embedding_batches(works, missing, {1: 10}))
    assert [[w.id for w in b] for b in batches] == [[1], [2], [3]]
    assert len(batches[1][0].chunks) == 50


def test_cached_texts_do_not_count_and_collections_never_mix() -> None:
    works = [work(1, 1, 5), work(2, 2, 5), work(3, 1, 5), work(4, 2, 5)]
    missing = {1: 0, 2: 5, 3: 1, 4: 5}
    batches = list(embedding_batches(works, missing, {1: 1, 2: 5}))
    assert [[w.id for w in b] for b in batches] == [[1, 3], [2], [4]]
    assert all(len({w.collection_id for w in b}) == 1 for b in batches)


def test_work_survives_a_message_round_trip() -> None:
    original = work(9, 4, 3)
    assert DocumentWork.from_message(original.to_message()) == original


def test_work_sent_by_an_earlier_version_is_still_read() -> None:
    original = work(9, 4, 3)
    message = original.to_message()
    message["space"] = message.pop("embedder")  # what earlier versions called it
    assert DocumentWork.from_message(message) == original


def test_ingest_tasks_are_bounded_by_documents_and_content() -> None:
    items = [(i, 1) for i in range(7)]
    assert [len(g) for g in groups(items, None, 3, 100)] == [3, 3, 1]
    sizes = [40, 40, 40, 500, 10, 10, 10]
    assert [[i for i, _ in g] for g in groups(items, sizes, 10, 100)] == [
        [0, 1],
        [2],
        [3],
        [4, 5, 6],
    ]
