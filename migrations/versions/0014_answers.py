"""Grounded answers: a collection's own chat model, prompt and "I don't know" sentence, and the
query log's record of each answer (status, model, tokens, unsupported sentences), shown to
analysts as `analytics.answers` and `analytics.answers_daily` (per workspace, as the other
views: migrations/versions/0011_analytics_per_workspace.py).

Revision ID: 0014_answers
Revises: 0013_originals
Create Date: 2026-12-02
"""

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_answers"
down_revision: str | None = "0013_originals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_VISIBLE = importlib.import_module("migrations.versions.0011_analytics_per_workspace").VISIBLE
VIEWS = {
    "answers": """
        SELECT q.id AS query_id, q.at, c.name AS collection, q.query_text, q.query_hash,
               q.answer_status AS status, q.chat_model, q.prompt_tokens, q.completion_tokens,
               q.sentences, q.unsupported_sentences, q.best_score, q.threshold, q.latency_ms,
               w.name AS workspace
        FROM public.query_log q
        JOIN public.collections c ON c.id = q.collection_id
        JOIN public.workspaces w ON w.id = c.workspace_id
        WHERE q.endpoint = 'answer' AND {visible}
    """,
    "answers_daily": """
        SELECT collection, at::date AS day, count(*) AS answers,
               count(*) FILTER (WHERE status = 'answered') AS answered,
               count(*) FILTER (WHERE status = 'no_context') AS no_context,
               count(*) FILTER (WHERE status = 'declined') AS declined,
               count(*) FILTER (WHERE status = 'unsupported') AS unsupported,
               sum(sentences) AS sentences,
               sum(unsupported_sentences) AS unsupported_sentences,
               round(sum(unsupported_sentences)::numeric
                     / nullif(sum(sentences), 0), 4)::float8 AS unsupported_sentence_share,
               sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms,
               workspace
        FROM analytics.answers
        GROUP BY workspace, collection, at::date
    """,
}


def upgrade() -> None:
    op.add_column("collections", sa.Column("answer_model", sa.Text, nullable=True))
    op.add_column("collections", sa.Column("answer_prompt", sa.Text, nullable=True))
    op.add_column("collections", sa.Column("answer_no_context", sa.Text, nullable=True))
    op.add_column("query_log", sa.Column("answer_status", sa.Text, nullable=True))
    op.add_column("query_log", sa.Column("chat_model", sa.Text, nullable=True))
    op.add_column("query_log", sa.Column("prompt_tokens", sa.Integer, nullable=True))
    op.add_column("query_log", sa.Column("completion_tokens", sa.Integer, nullable=True))
    op.add_column("query_log", sa.Column("sentences", sa.Integer, nullable=True))
    op.add_column("query_log", sa.Column("unsupported_sentences", sa.Integer, nullable=True))
    for name, body in VIEWS.items():
        op.execute(
            f"CREATE VIEW analytics.{name} WITH (security_barrier = true)"
            f" AS {body.format(visible=_VISIBLE.format(ws='c.workspace_id'))}"
        )


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW analytics.{name}")
    for column in (
        "unsupported_sentences",
        "sentences",
        "completion_tokens",
        "prompt_tokens",
        "chat_model",
        "answer_status",
    ):
        op.drop_column("query_log", column)
    for column in ("answer_no_context", "answer_prompt", "answer_model"):
        op.drop_column("collections", column)
