"""Grounded answers: a collection's own chat model, prompt and "I don't know" sentence, and the
query log's record of each answer (status, model, tokens, unsupported sentences).

Revision ID: 0014_answers
Revises: 0013_originals
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_answers"
down_revision: str | None = "0013_originals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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


def downgrade() -> None:
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
