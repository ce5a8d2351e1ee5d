"""Reading BEIR-format data: corpus.jsonl, queries.jsonl, qrels.tsv, unanswerable.jsonl."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dataset:
    """A retrieval benchmark: documents, questions with judgements, and unanswerable ones."""

    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    unanswerable: dict[str, str]


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load(directory: Path) -> Dataset:
    """Loads a BEIR directory; `unanswerable.jsonl` is optional."""
    corpus = {
        str(row["id"] if "id" in row else row["_id"]): (
            str(row.get("title") or ""),
            str(row["text"]),
        )
        for row in _jsonl(directory / "corpus.jsonl")
    }
    queries = {
        str(row["id"] if "id" in row else row["_id"]): str(row["text"])
        for row in _jsonl(directory / "queries.jsonl")
    }
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (directory / "qrels.tsv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if not row or row[0] in ("query-id", "query_id"):
                continue
            qrels[row[0]][row[1]] = int(row[2])
    extra = directory / "unanswerable.jsonl"
    unanswerable = (
        {str(row["id"]): str(row["text"]) for row in _jsonl(extra)} if extra.exists() else {}
    )
    return Dataset(corpus, queries, dict(qrels), unanswerable)


def document_text(title: str, text: str) -> str:
    """The text ingested for a corpus entry: its title, then its body (BEIR convention)."""
    return f"{title}\n\n{text}" if title else text
