"""Re-calibrating the relevance threshold for a new embedding space, without labels.

The collection's recent logged questions (their text, where the query log keeps it) are asked
again of both spaces; each question's best score under the old space and under the new one go
to `threshold.match_threshold`, which places the new threshold where the new space grounds the
same share of them as the old threshold did. With labelled data from `groundwire eval`
recorded on the migration, its calibrated threshold is used instead (`eval`); with fewer than
`MIN_QUESTIONS` logged questions, the new embedder's default (`default`).

Question vectors go through the embedding cache, so a second migration between the same
spaces embeds nothing. The questions are asked as their callers asked them (the same mode),
over the chunks without an access list: a threshold is a property of the space, not of who
asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.embedding import Embedder
from services.embedding.cache import embed_cached
from services.query.candidates import Mode
from services.query.retrieval import SearchSpace, search
from services.spaces.threshold import MIN_QUESTIONS, match_threshold

RECENT_QUESTIONS = 1000
BEST_OF = 10  # candidates retrieved per question; the best one's score is what counts

_RECENT = text(
    """
    SELECT query_text, mode FROM (
        SELECT DISTINCT ON (query_text) query_text, mode, at
        FROM query_log
        WHERE collection_id = :collection AND query_text IS NOT NULL
          AND endpoint IN ('query', 'context', 'answer')
        ORDER BY query_text, at DESC
    ) AS q
    ORDER BY at DESC
    LIMIT :limit
    """
)


@dataclass(frozen=True)
class Recalibrated:
    """The new space's threshold, how it was found, and what it was found from."""

    threshold: float
    method: str  # "query_log" | "eval" | "default"
    detail: dict[str, Any] = field(default_factory=dict)


def recent_questions(
    session: Session, collection_id: int, limit: int = RECENT_QUESTIONS
) -> list[tuple[str, Mode]]:
    """The collection's most recent distinct logged questions, with the mode each was asked in."""
    rows = session.execute(_RECENT, {"collection": collection_id, "limit": limit})
    return [(str(q), m) for q, m in rows]


def best_scores(
    session: Session, embedder: Embedder, space: SearchSpace, questions: Sequence[tuple[str, Mode]]
) -> list[float]:
    """Each question's best score in `space` (-1 where nothing is retrieved)."""
    if not questions:
        return []
    vectors = embed_cached(session, embedder, [q for q, _ in questions])
    best: list[float] = []
    for (question, mode), vector in zip(questions, vectors, strict=True):
        found = search(session, space, vector, question, BEST_OF, mode)
        best.append(max((c.score for c in found), default=-1.0))
    return best


def from_eval(comparison: dict[str, Any] | None) -> Recalibrated | None:
    """The threshold `groundwire eval --space shadow` calibrated on labelled data, if any."""
    if not comparison:
        return None
    calibrated = comparison.get("calibrated_threshold")
    if calibrated is None:
        return None
    return Recalibrated(float(calibrated), "eval", {"eval": comparison.get("data")})


def recalibrate(
    session: Session,
    old: tuple[Embedder, SearchSpace, float],
    new: tuple[Embedder, SearchSpace],
    default_threshold: float,
    comparison: dict[str, Any] | None = None,
) -> Recalibrated:
    """The new space's threshold: from eval data when recorded, else by quantile matching
    over the query log, else the new embedder's default."""
    evaluated = from_eval(comparison)
    if evaluated is not None:
        return evaluated
    old_embedder, old_space, old_threshold = old
    new_embedder, new_space = new
    questions = recent_questions(session, old_space.collection_id)
    if len(questions) >= MIN_QUESTIONS:
        matched = match_threshold(
            best_scores(session, old_embedder, old_space, questions),
            best_scores(session, new_embedder, new_space, questions),
            old_threshold,
        )
        if matched is not None:
            return Recalibrated(
                round(matched.threshold, 6),
                "query_log",
                {
                    "questions": matched.questions,
                    "grounded_share_old": round(matched.share_old, 4),
                    "grounded_share_new": round(matched.share_new, 4),
                    "spearman": round(matched.spearman, 4),
                },
            )
    return Recalibrated(
        default_threshold,
        "default",
        {"questions": len(questions), "needed": MIN_QUESTIONS},
    )
