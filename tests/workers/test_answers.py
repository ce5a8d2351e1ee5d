"""Grounded answers against the stand-in chat model: each scripted behaviour ends in the right
status with the right sentences flagged, nothing relevant never calls the model, streaming
sends deltas then the checked answer, and the provider's failures are clear 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from services.app import create_app
from services.config import Settings
from tests.support.api import ingest, wait_finished
from tests.support.cross_encoders import word_counter

pytestmark = pytest.mark.usefixtures("worker")

DOCUMENTS = [
    {"id": "leave", "title": "Leave policy",
     "text": "Employees accrue 25 days of paid leave per year. Unused days carry over until"
             " March."},
    {"id": "remote", "title": "Remote work",
     "text": "Staff may work remotely two days a week. Requests go to the team lead."},
]  # fmt: skip
QUESTION = "How many days of paid leave do employees accrue per year, and remote work days?"


@pytest.fixture(scope="module")
def handbook(api_module: TestClient) -> str:
    name = "answers-handbook"
    created = api_module.post("/v1/collections", json={"name": name, "embedder": "hash"})
    assert created.status_code in (201, 409), created.text
    wait_finished(api_module, ingest(api_module, name, DOCUMENTS)["batch_id"])
    return name


def ask(api: TestClient, name: str, **body: Any) -> Any:
    return api.post(
        f"/v1/collections/{name}/answer", json={"query": QUESTION, "min_score": -1, **body}
    )


@pytest.fixture
def chat(fake_openai: Any) -> Iterator[Any]:
    fake_openai.reset()
    yield fake_openai
    fake_openai.reset()


def test_nothing_relevant_never_calls_the_model(api: TestClient, handbook: str, chat: Any) -> None:
    answer = api.post(
        f"/v1/collections/{handbook}/answer", json={"query": "volcanic basalt eruptions"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "no_context" and body["grounded"] is False
    assert body["answer"] == Settings().no_context_answer and body["model"] is None
    assert chat.chats == []


def test_a_faithful_answer_is_answered_and_cites_its_passages(
    api: TestClient, handbook: str, chat: Any
) -> None:
    body = ask(api, handbook).json()
    assert body["status"] == "answered" and body["grounded"] is True, body
    assert [s["supported"] for s in body["sentences"]] == [True, True]
    assert {c["document_id"] for c in body["citations"]} == {"leave", "remote"}
    assert all(s["support_score"] >= 0.5 for s in body["sentences"])
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    sent = chat.chats[-1]
    assert sent["model"] == "gpt-4o-mini" and "[1]" in sent["messages"][-1]["content"]
    assert "only the numbered passages" in sent["messages"][0]["content"]


@pytest.mark.parametrize(
    ("behaviour", "status", "flagged"),
    [
        ("wrong_citation", "unsupported", [False]),
        ("invented", "unsupported", [False]),
        ("uncited", "unsupported", [True, False]),
        ("bad_marker", "unsupported", [False]),
        ("refusal", "declined", []),
        ("cited_cannot", "unsupported", [True, False]),  # reads like a refusal, but cites
    ],
)
def test_each_scripted_behaviour_ends_in_its_status(
    api: TestClient, handbook: str, chat: Any, behaviour: str, status: str, flagged: list[bool]
) -> None:
    chat.reset(chat=behaviour)
    body = ask(api, handbook).json()
    assert body["status"] == status, body
    assert [s["supported"] for s in body["sentences"]] == flagged, body["sentences"]
    assert body["grounded"] is False
    if behaviour == "bad_marker":
        assert body["sentences"][0]["citations"] == [] and "[9]" not in body["answer"]
    if behaviour == "uncited":
        assert body["sentences"][1]["support_score"] == 0.0


def test_strict_leaves_unsupported_sentences_out(api: TestClient, handbook: str, chat: Any) -> None:
    chat.reset(chat="uncited")
    body = ask(api, handbook, strict=True).json()
    assert body["status"] == "unsupported" and body["grounded"] is True
    assert "museum" not in body["answer"] and "[1]" in body["answer"]
    assert [s["supported"] for s in body["sentences"]] == [True, False]
    chat.reset(chat="invented")
    nothing_left = ask(api, handbook, strict=True).json()
    assert nothing_left["status"] == "declined"
    assert nothing_left["answer"] == Settings().no_context_answer


def test_streaming_sends_deltas_then_the_checked_answer(
    api: TestClient, handbook: str, chat: Any
) -> None:
    with api.stream(
        "POST",
        f"/v1/collections/{handbook}/answer",
        json={"query": QUESTION, "min_score": -1, "stream": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        for block in response.iter_text():
            events.append(block)
    text = "".join(events)
    parsed = [
        (chunk.split("\n")[0][len("event: ") :], json.loads(chunk.split("\n")[1][len("data: ") :]))
        for chunk in text.strip().split("\n\n")
    ]
    names = [name for name, _ in parsed]
    assert names[-2:] == ["citations", "done"] and set(names[:-2]) == {"delta"}
    assert len(names) > 4
    streamed = "".join(data["text"] for name, data in parsed if name == "delta")
    final = parsed[-2][1]
    assert final["status"] == "answered" and "25 days" in streamed
    assert final["answer"].replace(" ", "") == streamed.replace(" ", "")


def test_provider_failures_are_clear_errors(
    handbook: str, chat: Any, settings: Settings, admin_headers: dict[str, str]
) -> None:
    quick = settings.model_copy(update={"chat_timeout_s": 0.5, "chat_max_retries": 0})
    with TestClient(create_app(quick), headers=admin_headers) as api:
        chat.reset(chat="rate_limit")
        limited = ask(api, handbook)
        assert limited.status_code == 503 and limited.json()["error"]["code"] == "chat_rate_limited"
        assert limited.headers["retry-after"] == "0.1"
        chat.reset(chat="overflow")
        overflow = ask(api, handbook)
        assert (
            overflow.status_code == 502 and overflow.json()["error"]["code"] == "context_overflow"
        )
        assert len(chat.chats) == 2  # tried again with half the context
        chat.reset(chat="hang", chat_hang_s=3)
        hung = ask(api, handbook)
        assert hung.status_code == 504 and hung.json()["error"]["code"] == "chat_timeout"


def test_answers_are_in_the_query_log(
    api: TestClient, handbook: str, chat: Any, database_url: str
) -> None:
    chat.reset(chat="uncited")
    ask(api, handbook)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT answer_status, chat_model, prompt_tokens > 0, completion_tokens > 0,"
            " sentences, unsupported_sentences FROM query_log WHERE endpoint = 'answer'"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == ("unsupported", "gpt-4o-mini", True, True, 2, 1)


def test_the_documented_query_counts_unsupported_sentences(
    api: TestClient, chat: Any, database_url: str
) -> None:
    name = "answers-analytics"
    assert api.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code == 201
    wait_finished(api, ingest(api, name, DOCUMENTS)["batch_id"])
    for behaviour in ("faithful", "uncited", "invented"):  # 2 + 2 + 1 sentences, 0 + 1 + 1 bad
        chat.reset(chat=behaviour)
        assert ask(api, name).status_code == 200
    api.post(f"/v1/collections/{name}/answer", json={"query": "volcanic basalt"})  # no_context
    docs = (Path(__file__).parents[2] / "docs" / "answers.md").read_text()
    sql = docs.split("-- example: unsupported_sentences_daily\n", 1)[1].split("```", 1)[0]
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = [r for r in conn.execute(sql).fetchall() if r["collection"] == name]
    assert len(rows) == 1
    row = rows[0]
    assert (row["answers"], row["sentences"], row["unsupported_sentences"]) == (4, 5, 2)
    assert row["unsupported_sentence_share"] == 0.4


def test_a_collection_sets_its_own_model_prompt_and_no_context_sentence(
    api: TestClient, chat: Any
) -> None:
    name = "answers-own-settings"
    assert api.post("/v1/collections", json={"name": name, "embedder": "hash"}).status_code == 201
    wait_finished(api, ingest(api, name, DOCUMENTS)["batch_id"])
    changed = api.patch(
        f"/v1/collections/{name}",
        json={
            "answer_model": "llama3.1:8b",
            "answer_prompt": "Answer from the passages, cite [n], else say: {no_context}",
            "answer_no_context": "Nothing in the handbook covers that.",
        },
    )
    assert changed.status_code == 200 and changed.json()["answer_model"] == "llama3.1:8b"
    assert api.patch(f"/v1/collections/{name}", json={}).status_code == 422
    nothing = api.post(f"/v1/collections/{name}/answer", json={"query": "volcanic basalt"})
    assert nothing.json()["answer"] == "Nothing in the handbook covers that."
    chat.reset(chat="refusal")
    declined = ask(api, name).json()
    assert declined["status"] == "declined" and declined["model"] == "llama3.1:8b"
    system = chat.chats[-1]["messages"][0]["content"]
    assert (
        system
        == "Answer from the passages, cite [n], else say: Nothing in the handbook covers that."
    )
    assert declined["answer"] == "Nothing in the handbook covers that."


def test_the_official_openai_client_gets_grounded_answers(
    api: TestClient, handbook: str, chat: Any, admin_headers: dict[str, str]
) -> None:
    import openai

    key = admin_headers["Authorization"].removeprefix("Bearer ")
    client = openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=api)
    listed = [m.id for m in client.models.list()]
    assert f"groundwire/{handbook}" in listed
    question: Any = [{"role": "user", "content": "How many days of paid leave per year?"}]
    reply = client.chat.completions.create(model=f"groundwire/{handbook}", messages=question)
    message = reply.choices[0].message
    checked = (message.model_extra or {})["groundwire"]
    assert "25 days" in (message.content or "") and checked["status"] == "answered"
    assert checked["citations"][0]["document_id"] == "leave"
    assert reply.usage is not None and reply.usage.completion_tokens > 0

    chunks: list[Any] = list(
        client.chat.completions.create(
            model=f"groundwire/{handbook}", messages=question, stream=True
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].choices[0]
    assert last.finish_reason == "stop" and "25 days" in streamed
    assert (last.delta.model_extra or {})["groundwire"]["status"] == "answered"

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=question)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="groundwire/no-such-collection", messages=question)


def test_the_chat_budget_is_shared_and_honoured(
    handbook: str, chat: Any, settings: Settings, admin_headers: dict[str, str]
) -> None:
    limited = settings.model_copy(
        update={
            "chat_requests_per_minute": 2,
            "chat_timeout_s": 1.0,
            "chat_max_retries": 0,
        }
    )
    with TestClient(create_app(limited), headers=admin_headers) as api:
        first = ask(api, handbook)
        assert first.status_code == 200, first.text
        chat.reset(chat="rate_limit")  # the server says 429 (Retry-After 0.1): all pause
        assert ask(api, handbook).status_code == 503
        chat.reset()
        spent = ask(api, handbook)  # the budget's two requests a minute are used up
        assert spent.status_code == 503, spent.text
        assert spent.json()["error"]["code"] == "chat_budget_exhausted"
        assert spent.headers["retry-after"] == "5"
    assert len(chat.chats) == 0  # the last one never reached the model


def judged(settings: Settings, **more: Any) -> Settings:
    return settings.model_copy(update={"support_check": "judge", **more})


def test_the_chat_model_as_support_judge(
    handbook: str, chat: Any, settings: Settings, admin_headers: dict[str, str]
) -> None:
    with TestClient(create_app(judged(settings)), headers=admin_headers) as api:
        faithful = ask(api, handbook).json()
        assert faithful["status"] == "answered", faithful
        assert [s["support_score"] for s in faithful["sentences"]] == [1.0, 1.0]
        answering, judging = chat.chats
        assert "Sentence 2:" in judging["messages"][-1]["content"]
        assert "25 days of paid leave" in judging["messages"][-1]["content"]
        assert judging["model"] == answering["model"] == "gpt-4o-mini"
        # the judge's tokens count in the answer's usage
        assert faithful["usage"]["prompt_tokens"] > len(answering["messages"][-1]["content"]) // 8
        chat.reset(chat="invented")
        invented = ask(api, handbook).json()
        assert invented["status"] == "unsupported"
        assert [s["support_score"] for s in invented["sentences"]] == [0.0]
        chat.reset(chat="invented", judge="lenient")  # the judge decides, not the words
        assert ask(api, handbook).json()["status"] == "answered"
    with TestClient(
        create_app(judged(settings, support_judge_model="judge-mini")), headers=admin_headers
    ) as api:
        chat.reset()
        ask(api, handbook)
        assert [c["model"] for c in chat.chats] == ["gpt-4o-mini", "judge-mini"]


@pytest.mark.parametrize("failure", ["garbage", "error"])
def test_a_failing_judge_leaves_the_lexical_scores(
    handbook: str,
    chat: Any,
    settings: Settings,
    admin_headers: dict[str, str],
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TestClient(create_app(judged(settings)), headers=admin_headers) as api:
        for behaviour, status, flagged in [
            ("invented", "unsupported", [False]),
            ("faithful", "answered", [True, True]),
        ]:
            chat.reset(chat=behaviour, judge=failure)
            body = ask(api, handbook).json()
            assert body["status"] == status, body
            assert [s["supported"] for s in body["sentences"]] == flagged
            assert "the support judge" in caplog.text and "lexical" in caplog.text
            caplog.clear()


def test_an_operators_support_model(
    handbook: str, chat: Any, settings: Settings, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    """A stand-in NLI model: the entailment logit is 0.5 plus how often the sentence says
    "leave" (the others 0), so one "leave" is entailed (0.69) and none is not (0.45)."""
    word_counter(
        tmp_path,
        "leave-nli",
        "leave",
        kind="support",
        bias=0.5,
        labels=["contradiction", "entailment", "neutral"],
    )
    configured = settings.model_copy(
        update={"support_check": "local:leave-nli", "models_dir": tmp_path}
    )
    with TestClient(create_app(configured), headers=admin_headers) as api:
        body = ask(api, handbook).json()
    leave, remote = body["sentences"]
    assert "leave" in leave["text"] and "leave" not in remote["text"]
    assert leave["supported"] and not remote["supported"] and body["status"] == "unsupported"
    assert leave["support_score"] == pytest.approx(float(np.exp(1.5) / (np.exp(1.5) + 2)), abs=1e-4)
    assert len(chat.chats) == 1  # no judge call
