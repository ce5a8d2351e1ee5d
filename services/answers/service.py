"""Answering a question: retrieve and pack the context, ask the chat model, then check every
sentence against the passages it cites. Nothing relevant: the model is not called."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.answers.chat import ChatModel, Completion, ContextTooLong
from services.answers.checkers import Judge, SupportChecker
from services.answers.prompt import messages
from services.answers.schemas import (
    AnswerCitation,
    AnswerRequest,
    AnswerResponse,
    AnswerSentence,
    AnswerStatus,
    Usage,
)
from services.answers.sentences import (
    Sentence,
    has_markers,
    is_refusal,
    split_sentences,
    strip_markers,
)
from services.answers.support import STOP_WORDS
from services.api.errors import ApiError
from services.config import Settings
from services.db import Database
from services.models import Collection
from services.query.context import render as render_passage
from services.query.service import Packed, log_request, packed_context
from services.query.vectors import QueryVectorCache
from services.rerank.service import RerankStage

_FACT_WORD = re.compile(r"[^\W\d_]{3,}|\d")
# Words past which an uncited sentence states something to check (not "In short:" or "Yes.").
FACT_WORDS = 3


@dataclass
class Prepared:
    """What the model is asked, from what, and when the request began."""

    packed: Packed
    model: str
    messages: list[dict[str, str]]
    no_context: str
    started: float
    reranker: RerankStage | None = None


def prepare(
    session: Session,
    vectors: QueryVectorCache,
    settings: Settings,
    collection: Collection,
    request: AnswerRequest,
    principals: tuple[str, ...],
    max_tokens: int | None = None,
    reranker: RerankStage | None = None,
) -> Prepared:
    """Retrieves and packs the context the model answers from."""
    started = time.perf_counter()
    packed = packed_context(
        session,
        vectors,
        collection,
        request,
        max_tokens or request.max_context_tokens,
        principals,
        candidates=max(request.k * 3, 30),
        reranker=reranker,
    )
    if len(packed.spans) > request.k:  # at most k passages, the best ranked
        kept = dict(list(packed.spans.items())[: request.k])
        citations = [c for c in packed.response.citations if c.n in kept]
        packed = Packed(
            packed.response.model_copy(update={"citations": citations}), kept, packed.grounding
        )
    no_context = collection.answer_no_context or settings.no_context_answer
    return Prepared(
        packed=packed,
        model=request.model or collection.answer_model or settings.chat_model,
        messages=messages(
            request.query, _context_text(packed), no_context, collection.answer_prompt
        ),
        no_context=no_context,
        started=started,
        reranker=reranker,
    )


def _context_text(packed: Packed) -> str:
    """The `[n]` blocks of the passages kept."""
    return "\n\n".join(render_passage(n, span) for n, span in packed.spans.items())


def complete(
    chat: ChatModel, prepared: Prepared, retry: Callable[[], Prepared]
) -> tuple[Prepared, Completion]:
    """The model's answer and the context it answered from: a prompt over its window is tried
    once more with half the context (renumbered: the answer is checked against that one)."""
    try:
        return prepared, chat.complete(prepared.model, prepared.messages)
    except ContextTooLong:
        smaller = retry()
        if not smaller.packed.spans:
            raise ApiError(
                502, "context_overflow", "no passage fits the model's context window"
            ) from None
        try:
            return smaller, chat.complete(smaller.model, smaller.messages)
        except ContextTooLong as error:
            raise ApiError(
                502, "context_overflow", f"the prompt is over the model's context window: {error}"
            ) from None


def _states_facts(text: str) -> bool:
    words = [w for w in _FACT_WORD.findall(text) if w.lower() not in STOP_WORDS]
    return len(words) >= FACT_WORDS or any(w.isdigit() for w in words)


def check_sentences(
    sentences: list[Sentence], packed: Packed, support: SupportChecker
) -> list[AnswerSentence]:
    """Each sentence with the passages it cites and whether they support it (the checker
    scores every cited sentence of the answer in one call)."""
    cited = [[n for n in s.citations if n in packed.spans] for s in sentences]
    claims = [
        (sentence.text, [packed.spans[n].text for n in ns])
        for sentence, ns in zip(sentences, cited, strict=True)
        if ns
    ]
    scores = iter(support.scores(claims))
    checked = []
    for sentence, ns in zip(sentences, cited, strict=True):
        named_nothing = len(ns) < len(sentence.citations)  # a marker of no passage
        if not ns:
            facts = _states_facts(sentence.text)
            checked.append(
                AnswerSentence(
                    text=sentence.text,
                    citations=[],
                    supported=not facts and not named_nothing,
                    support_score=0.0 if facts or named_nothing else None,
                )
            )
            continue
        score = next(scores)
        checked.append(
            AnswerSentence(
                text=sentence.text,
                citations=ns,
                supported=score >= support.threshold and not named_nothing,
                support_score=round(score, 4),
            )
        )
    return checked


def render(sentences: list[AnswerSentence]) -> str:
    """Sentences joined back into an answer, each with its markers before its full stop."""
    parts = []
    for sentence in sentences:
        text, markers = sentence.text, "".join(f"[{n}]" for n in sentence.citations)
        if markers and text[-1:] in ".!?":
            text = f"{text[:-1]} {markers}{text[-1]}"
        elif markers:
            text = f"{text} {markers}"
        parts.append(text)
    return " ".join(parts)


def outcome(
    prepared: Prepared,
    completion: Completion,
    request: AnswerRequest,
    support: SupportChecker,
) -> AnswerResponse:
    """The checked answer."""
    packed = prepared.packed
    text = completion.text.strip()
    # A refusal says so without citing: an answer that cites passages is checked, even when
    # one of its sentences says something "cannot be found".
    refused = not has_markers(text) and (is_refusal(text) or _same(text, prepared.no_context))
    checked = [] if refused else check_sentences(split_sentences(text), packed, support)
    kept = [s for s in checked if s.supported]
    status: AnswerStatus = "answered"
    answer = strip_markers(text, set(packed.spans))  # as the model wrote it, lists and all
    grounded = True
    if refused or not checked:
        said = strip_markers(text, set()).strip()
        status, answer, grounded = "declined", said or prepared.no_context, False
    elif len(kept) < len(checked):
        status, grounded = "unsupported", False
        if request.strict and kept:  # the answer keeps only what its passages support
            answer, grounded = render(kept), True
        elif request.strict:
            status, answer = "declined", prepared.no_context
    cited = sorted({n for s in (kept if request.strict else checked) for n in s.citations})
    by_n = {c.n: c for c in packed.response.citations}
    return AnswerResponse(
        grounded=grounded,
        status=status,
        answer=answer,
        sentences=checked,
        citations=[
            AnswerCitation(
                n=n,
                document_id=by_n[n].document_id,
                title=by_n[n].title,
                source=by_n[n].source,
                chunk=by_n[n].chunk,
                location=by_n[n].location,
            )
            for n in cited
        ],
        model=completion.model,
        usage=_usage(completion, support),
        threshold=packed.response.threshold,
        best_score=packed.response.best_score,
        reranked=packed.response.reranked,
    )


def _usage(completion: Completion, support: SupportChecker) -> Usage:
    """The chat model's tokens: the answer's, and the judge's where it checked it."""
    judged = support if isinstance(support, Judge) else None
    return Usage(
        prompt_tokens=completion.prompt_tokens + (judged.prompt_tokens if judged else 0),
        completion_tokens=completion.completion_tokens
        + (judged.completion_tokens if judged else 0),
    )


def _same(text: str, sentence: str) -> bool:
    def norm(value: str) -> str:
        return " ".join(re.findall(r"\w+", value.lower()))

    return bool(text) and norm(text) == norm(sentence)


def no_context(prepared: Prepared) -> AnswerResponse:
    """The answer when nothing is relevant: the collection's sentence, no model called."""
    packed = prepared.packed
    return AnswerResponse(
        grounded=False,
        status="no_context",
        answer=prepared.no_context,
        sentences=[],
        citations=[],
        model=None,
        usage=Usage(prompt_tokens=0, completion_tokens=0),
        threshold=packed.response.threshold,
        best_score=packed.response.best_score,
        reranked=packed.response.reranked,
    )


def log_answer(
    session: Session,
    settings: Settings,
    collection: Collection,
    request: AnswerRequest,
    prepared: Prepared,
    response: AnswerResponse,
) -> None:
    """The answer's line in the query log, in the session's transaction."""
    log_request(
        session,
        settings.query_log,
        collection,
        "answer",
        request,
        request.k,
        prepared.packed.grounding,
        prepared.started,
        answer={
            "answer_status": response.status,
            "chat_model": response.model,
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
            "sentences": len(response.sentences),
            "unsupported_sentences": sum(1 for s in response.sentences if not s.supported),
        },
    )


def answer_whole(
    session: Session,
    vectors: QueryVectorCache,
    settings: Settings,
    collection: Collection,
    request: AnswerRequest,
    principals: tuple[str, ...],
    prepared: Prepared,
    chat: ChatModel,
    support: SupportChecker,
) -> tuple[AnswerResponse, Completion]:
    """Asks the model (again with half the context if the prompt is over its window), checks
    the answer and logs it, in the session's transaction (the caller commits)."""

    def smaller() -> Prepared:
        half = request.max_context_tokens // 2
        return prepare(
            session, vectors, settings, collection, request, principals, half, prepared.reranker
        )

    prepared, completion = complete(chat, prepared, smaller)
    response = outcome(prepared, completion, request, support)
    log_answer(session, settings, collection, request, prepared, response)
    return response, completion


def answer_no_context(
    session: Session,
    settings: Settings,
    collection: Collection,
    request: AnswerRequest,
    prepared: Prepared,
) -> AnswerResponse:
    """The no-context answer, logged in the session's transaction (the caller commits)."""
    response = no_context(prepared)
    log_answer(session, settings, collection, request, prepared, response)
    return response


def finish_streamed(
    database: Database,
    settings: Settings,
    collection: Collection,
    request: AnswerRequest,
    prepared: Prepared,
    completion: Completion,
    support: SupportChecker,
) -> AnswerResponse:
    """The checked answer of a stream the model has finished, logged in a transaction of its
    own (the request's session is gone by then)."""
    response = outcome(prepared, completion, request, support)
    with database.scope() as session:
        log_answer(session, settings, collection, request, prepared, response)
    return response
