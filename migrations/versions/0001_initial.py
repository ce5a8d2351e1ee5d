"""Initial schema: collections, documents, chunks, embedding cache, ingest batches.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.statuses import PENDING, DocumentStatus, sql_list

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "collections",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("embedder", sa.Text, nullable=False),
        sa.Column("dimensions", sa.Integer, nullable=False),
        sa.Column("max_input_tokens", sa.Integer, nullable=False),
        sa.Column("chunk_tokens", sa.Integer, nullable=False),
        sa.Column("chunk_overlap", sa.Integer, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("dimensions BETWEEN 1 AND 16000", name="collections_dimensions"),
        sa.CheckConstraint(
            "chunk_overlap >= 0 AND chunk_overlap < chunk_tokens", name="collections_overlap"
        ),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "collection_id",
            sa.BigInteger,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("indexed_version", sa.Integer),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("chunk_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("token_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("embedded_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("collection_id", "external_id", name="documents_collection_external"),
        sa.CheckConstraint(
            f"status IN ({sql_list(list(DocumentStatus))})", name="documents_status"
        ),
    )
    op.create_index(
        "documents_pending",
        "documents",
        ["status", "enqueued_at"],
        postgresql_where=sa.text(f"status IN ({sql_list(list(PENDING))})"),
    )
    op.create_table(
        "chunks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("collection_id", sa.BigInteger, nullable=False),
        sa.Column(
            "document_id",
            sa.BigInteger,
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("doc_version", sa.Integer, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("char_start", sa.Integer, nullable=False),
        sa.Column("char_end", sa.Integer, nullable=False),
        sa.Column("token_count", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.LargeBinary, nullable=False),
        sa.Column("embedding", Vector(), nullable=False),
        sa.UniqueConstraint("document_id", "ordinal", name="chunks_document_ordinal"),
    )
    op.create_index("chunks_collection", "chunks", ["collection_id"])
    op.create_table(
        "embedding_cache",
        sa.Column("space", sa.Text, primary_key=True),
        sa.Column("content_hash", sa.LargeBinary, primary_key=True),
        sa.Column("embedding", Vector(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "ingest_batches",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "collection_id",
            sa.BigInteger,
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_table(
        "batch_items",
        sa.Column(
            "batch_id",
            UUID(as_uuid=True),
            sa.ForeignKey("ingest_batches.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "document_id",
            sa.BigInteger,
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("accepted_status", sa.Text, nullable=False),
    )
    op.create_index("batch_items_document", "batch_items", ["document_id"])


def downgrade() -> None:
    op.drop_table("batch_items")
    op.drop_table("ingest_batches")
    op.drop_table("embedding_cache")
    # Per-collection HNSW indexes are on chunks and go with it.
    op.drop_table("chunks")
    op.drop_table("documents")
    op.drop_table("collections")
    op.execute("DROP EXTENSION IF EXISTS vector")
