"""The analytics surface, checked against a real session: every example query of
docs/analytics.md is run on a database filled by real ingestion (API, a Celery worker, the
OpenAI-compatible test server) and real queries, and its answers are compared with what the
test saw through the API. An analyst role reads the views and nothing else.

By default the session is a small made-up one; with GROUNDWIRE_ANALYTICS_BEIR set to a BEIR
folder (e.g. the SciFact dev set) its corpus is ingested and its queries asked instead.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from groundwire import migrate
from groundwire.analytics import grant
from groundwire.evaluation.beir import document_text
from groundwire.evaluation.beir import load as load_beir
from services.app import create_app
from services.embedding.openai_provider import PROBE_TEXT
from services.query.log import normalise_question
from tests.support.api import ingest, wait_finished
from tests.support.environment import harness, settings_from
from tests.support.processes import start_worker, stop_worker

pytestmark = pytest.mark.slow  # a worker of its own, on a database of its own

DOCS = Path(__file__).parents[2] / "docs" / "analytics.md"
EXAMPLE = re.compile(r"```sql\n-- example: (\w+)\n(.*?)```", re.S)
PAPERS_MODEL = "fake-analytics-model"
PRICE = 0.5  # USD per million tokens, set by the test as an operator would

TOPICS = [
    "Lighthouse keepers trimmed the lamp wicks every evening before dusk.",
    "The harbour master logs every vessel entering the northern channel.",
    "Tide tables predict high water twice a day along the estuary.",
    "Fog signals sound every thirty seconds when visibility falls below a mile.",
    "Buoys mark the safe passage between the sandbanks at the river mouth.",
    "The lifeboat crew trains on Tuesday nights in all weathers.",
    "Charts are corrected weekly from the notices to mariners.",
    "Pilots board inbound ships two miles off the breakwater.",
]
GAP = "Who won the 1998 football world cup?"
GAP_SPELLINGS = [
    GAP,
    "who won the 1998 football  World Cup?",
    "WHO WON THE 1998 FOOTBALL WORLD CUP?",
]


@dataclass
class Session:
    """What the test did and saw through the API."""

    docs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    asked: list[tuple[str, str, str, bool]] = field(default_factory=list)  # coll, mode, q, grounded
    provider_tokens: int = 0


@dataclass
class Service:
    api: Any
    fake: Any
    url: str
    postgres: Any
    database: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def service(
    postgres: Any, service_env: dict[str, str], fake_openai: Any, tmp_path_factory: Any
) -> Iterator[Service]:
    """A database of its own, migrated, with its own worker and in-process API."""
    database = f"analytics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = postgres.server.get_uri(database)
    migrate.upgrade(url)
    tag = uuid.uuid4().hex[:6]
    env = {
        **service_env,
        "DATABASE_URL": url,
        "GROUNDWIRE_INGEST_QUEUE": f"analytics-ingest-{tag}",
        "GROUNDWIRE_EMBED_QUEUE": f"analytics-embed-{tag}",
    }
    worker = start_worker(env, tmp_path_factory.mktemp("analytics") / "worker.log", 1)
    try:
        with TestClient(create_app(settings_from(env)), headers=admin(env)) as api:
            yield Service(api, fake_openai, url, postgres, database, env)
    finally:
        stop_worker(worker)


def admin(env: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {env['GROUNDWIRE_ADMIN_KEY']}"}


def examples() -> dict[str, str]:
    found = dict(EXAMPLE.findall(DOCS.read_text()))
    assert len(found) >= 10, "docs/analytics.md has at least ten example queries"
    return found


def run_sql(url: str, statement: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return list(conn.execute(statement.encode()).fetchall())


def handbook_documents() -> tuple[list[dict[str, Any]], list[str]]:
    beir = harness().analytics_beir
    if beir:
        data = load_beir(Path(beir))
        docs = [
            {"id": doc_id, "title": title or None, "text": document_text(title, text)}
            for doc_id, (title, text) in data.corpus.items()
            if text.strip()
        ]
        return docs, [*data.queries.values(), *data.unanswerable.values()]
    docs = [{"id": f"hb-{i}", "text": text} for i, text in enumerate(TOPICS)]
    docs.append({"id": "hb-copy", "text": TOPICS[0]})  # the cache answers its chunks
    questions = [TOPICS[1], TOPICS[2], "When does the lifeboat crew train?", TOPICS[6]]
    return docs, questions


def ask(service: Service, seen: Session, collection: str, question: str, mode: str) -> None:
    endpoint = "context" if mode == "context" else "query"
    body: dict[str, Any] = {"query": question}
    if mode != "context":
        body["mode"] = mode
    response = service.api.post(f"/v1/collections/{collection}/{endpoint}", json=body)
    assert response.status_code == 200, response.text
    seen.asked.append(
        (collection, "hybrid" if mode == "context" else mode, question, response.json()["grounded"])
    )


def fetch_documents(service: Service, collection: str, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for doc_id in ids:
        response = service.api.get(f"/v1/collections/{collection}/documents/{doc_id}")
        assert response.status_code == 200
        out.append(response.json())
    return out


@pytest.fixture(scope="module")
def session(service: Service) -> Session:
    """Runs a real ingest and query session; returns what the API said."""
    api, fake, seen = service.api, service.fake, Session()
    handbook, questions = handbook_documents()
    assert api.post("/v1/collections", json={"name": "handbook", "embedder": "hash"}).status_code
    for start in range(0, len(handbook), 500):
        batch = ingest(api, "handbook", handbook[start : start + 500])
        wait_finished(api, batch["batch_id"], timeout=600)

    fake.reset(dimensions=32)
    created = api.post(
        "/v1/collections", json={"name": "papers", "embedder": f"openai:{PAPERS_MODEL}"}
    )
    assert created.status_code == 201, created.text
    with psycopg.connect(service.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO embedding_prices VALUES ('openai', %s, %s)", [PAPERS_MODEL, PRICE]
        )
    warm = ingest(api, "papers", [{"id": "p-warm", "text": "Salinity of the estuary in May."}])
    wait_finished(api, warm["batch_id"])  # the worker has probed the model's dimensions
    papers = [{"id": f"p-{i}", "text": f"Study {i} of sediment in the estuary."} for i in range(4)]
    papers.append({"id": "p-bad", "text": "A study the provider refuses: REJECTME."})
    fake.reset(dimensions=32, rate_limit_next=1, retry_after_s=0.1, reject_marker="REJECTME")
    batch = ingest(api, "papers", papers)
    wait_finished(api, batch["batch_id"], allow_failed=True)
    seen.provider_tokens = sum(
        r.tokens for r in fake.requests if r.status == 200 and r.first_text != PROBE_TEXT
    )
    first = fake.requests  # the warm-up request came before the reset
    assert [r.status for r in first][:2] == [429, 400], first

    seen.docs["handbook"] = fetch_documents(service, "handbook", [d["id"] for d in handbook])
    seen.docs["papers"] = fetch_documents(service, "papers", ["p-warm", *[d["id"] for d in papers]])
    for i, question in enumerate(questions):
        ask(service, seen, "handbook", question, ("hybrid", "vector", "keyword", "context")[i % 4])
    for spelling in GAP_SPELLINGS:
        ask(service, seen, "handbook", spelling, "hybrid")
    ask(service, seen, "handbook", "What is the price of tea in China?", "vector")
    ask(service, seen, "papers", "sediment in the estuary", "hybrid")
    return seen


def seconds(doc: dict[str, Any], start: str, end: str) -> float:
    return (datetime.fromisoformat(doc[end]) - datetime.fromisoformat(doc[start])).total_seconds()


def done(seen: Session, collection: str) -> list[dict[str, Any]]:
    return [d for d in seen.docs[collection] if d["status"] == "done"]


def by(rows: list[dict[str, Any]], key: str = "collection") -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


def test_every_example_query_answers_what_the_session_did(
    service: Service, session: Session
) -> None:
    queries = examples()
    results = {name: run_sql(service.url, sql) for name, sql in queries.items()}
    for name in ("ingest_last_7_days", "grounded_rate_daily", "top_knowledge_gaps"):
        print(f"-- {name}", *results[name][:5], sep="\n")  # shown with pytest -s
    handbook_done, papers_done = done(session, "handbook"), done(session, "papers")
    assert len(papers_done) == len(session.docs["papers"]) - 1

    rows = by(results["ingest_last_7_days"])
    for name, docs in session.docs.items():
        finished = done(session, name)
        assert rows[name]["documents"] == len(docs)
        assert rows[name]["done"] == len(finished)
        assert rows[name]["failed"] == len(docs) - len(finished)
        assert rows[name]["chunks"] == sum(d["chunks"] for d in finished)
        assert rows[name]["tokens"] == sum(d["tokens"] for d in finished)

    rows = by(results["time_to_searchable"])
    for name in session.docs:
        waits = [seconds(d, "accepted_at", "finished_at") for d in done(session, name)]
        assert rows[name]["p50_seconds"] == pytest.approx(np.percentile(waits, 50), abs=1e-3)
        assert rows[name]["p95_seconds"] == pytest.approx(np.percentile(waits, 95), abs=1e-3)

    rows = by(results["stage_breakdown"])
    for name in session.docs:
        finished = done(session, name)
        row = rows[name]
        assert row["documents"] == len(finished)
        total = np.mean([seconds(d, "accepted_at", "finished_at") for d in finished])
        assert row["avg_seconds_to_searchable"] == pytest.approx(total, abs=1e-3)
        parts = row["avg_wait_seconds"] + row["avg_embed_seconds"] + row["avg_write_seconds"]
        assert parts == pytest.approx(total, abs=1e-3)
        assert min(row["avg_wait_seconds"], row["avg_embed_seconds"], row["avg_write_seconds"]) >= 0

    (failure,) = results["failures_by_reason"]
    assert (failure["collection"], failure["reason_class"], failure["documents"]) == (
        "papers",
        "embedding",
        1,
    )
    assert "400" in failure["latest_error"] or "rejected" in failure["latest_error"]

    cost = {(r["provider"], r["model"]): r for r in results["embedding_cost_30_days"]}
    paid = cost[("openai", PAPERS_MODEL)]
    assert paid["tokens"] == session.provider_tokens + warm_tokens(service)
    assert float(paid["estimated_cost_usd"]) == pytest.approx(int(paid["tokens"]) * PRICE / 1e6)
    assert float(cost[("hash", "v1")]["estimated_cost_usd"]) == 0.0

    rows = by(results["cache_savings"])
    assert rows["handbook"]["chunks"] == sum(d["chunks"] for d in handbook_done)
    assert rows["handbook"]["from_cache"] == sum(d["cached_chunks"] for d in handbook_done)
    if not harness().analytics_beir:
        copy = next(d for d in handbook_done if d["id"] == "hb-copy")
        assert rows["handbook"]["from_cache"] == copy["chunks"] >= 1
    assert rows["papers"]["from_cache"] == 0

    (limits,) = [r for r in results["provider_rate_limits"] if r["model"] == PAPERS_MODEL]
    assert limits["rate_limited"] == 1, "the one 429 the test server sent"
    assert limits["failed_requests"] == 2, "the shared request, then the bad document alone"

    rows = by(results["grounded_rate_daily"])
    for name in session.docs:
        asked = [a for a in session.asked if a[0] == name]
        assert rows[name]["queries"] == len(asked)
        assert rows[name]["grounded"] == sum(a[3] for a in asked)

    gaps = Counter(normalise_question(a[2]) for a in session.asked if not a[3])
    if not harness().analytics_beir:
        assert gaps[normalise_question(GAP)] == len(GAP_SPELLINGS), "the gap was never answered"
    top = results["top_knowledge_gaps"][0]
    most = max(gaps.values())
    assert top["times_asked"] == most
    assert normalise_question(top["question"]) in {q for q, n in gaps.items() if n == most}
    assert len(results["top_knowledge_gaps"]) == min(10, len(gaps))

    everyone = [d for name in session.docs for d in done(session, name)]
    slowest = sorted((seconds(d, "accepted_at", "finished_at") for d in everyone), reverse=True)
    got = [float(r["seconds"]) for r in results["slowest_documents"]]
    assert got == pytest.approx(slowest[:5], abs=2e-3)

    rows = by(results["latency_by_mode"], "mode")
    modes = Counter(a[1] for a in session.asked)
    assert {m: r["queries"] for m, r in rows.items()} == dict(modes)
    for mode, row in rows.items():
        grounded = [a[3] for a in session.asked if a[1] == mode]
        assert row["grounded_rate"] == pytest.approx(sum(grounded) / len(grounded))
        assert 0 < row["p50_ms"] <= row["p95_ms"]

    assert results["backlog_now"] == [], "everything accepted was finished"


def warm_tokens(service: Service) -> int:
    """Tokens of the warm-up document's request (sent before the test server was reset)."""
    rows = run_sql(
        service.url,
        "SELECT coalesce(sum(r.tokens), 0) AS tokens FROM embedding_requests r"
        " WHERE r.batch_id IN (SELECT u.batch_id FROM embedding_usage u"
        " JOIN documents d ON d.id = u.document_id WHERE d.external_id = 'p-warm')",
    )
    return int(rows[0]["tokens"])


def test_the_analyst_role_reads_the_views_and_nothing_else(
    service: Service, session: Session
) -> None:
    role = f"analyst_{uuid.uuid4().hex[:6]}"
    grant(service.url, role, create=True)
    url = service.postgres.server.get_postmaster_info().get_uri(role, service.database)
    with psycopg.connect(url, autocommit=True) as conn:
        for view in ("documents", "ingest_daily", "embedding_cost_daily", "failures"):
            count = conn.execute(f"SELECT count(*) FROM analytics.{view}").fetchone()
            assert count is not None and count[0] > 0, view
        for view in ("queries_daily", "knowledge_gaps", "embedding_requests", "queries"):
            conn.execute(f"SELECT * FROM analytics.{view} LIMIT 1")
        for statement in (
            "SELECT count(*) FROM public.documents",
            "SELECT count(*) FROM public.chunks",
            "SELECT count(*) FROM public.query_log",
            "SELECT count(*) FROM public.embedding_prices",
            "UPDATE analytics.embedding_prices SET usd_per_million_tokens = 0",
            "DELETE FROM analytics.embedding_prices",
            "CREATE TABLE analytics.mine (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())


def test_the_query_log_keeps_only_what_it_is_told(service: Service, session: Session) -> None:
    extra = Session()
    for keep, question in (
        ("hash", "A hashed question about buoys"),
        ("off", "An unlogged question about buoys"),
    ):
        app = create_app(settings_from(service.env, query_log=keep))
        with TestClient(app, headers=admin(service.env)) as api:
            ask(replace(service, api=api), extra, "handbook", question, "hybrid")
    rows = run_sql(
        service.url,
        "SELECT query_text, query_hash FROM analytics.queries ORDER BY query_id DESC LIMIT 2",
    )
    assert rows[0] == {"query_text": None, "query_hash": None}
    assert rows[1]["query_text"] is None and len(rows[1]["query_hash"]) == 64
