"""SQLAlchemy 2 typed models of the migrated schema.

Alembic migrations own the schema; these models describe it, table for table, column for
column, constraint and index for index (tests/db/test_schema_matches_models.py compares them
with a freshly migrated database). Not described here: each collection's partial HNSW and GIN
indexes, which collections create and drop (`services/vectors.py`), the text search trigger,
and the analysts' views (migrations/versions/0007_analytics.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.statuses import PENDING, DocumentStatus, sql_list

TIMESTAMPTZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    """Declarative base for all Groundwire tables."""


class Workspace(Base):
    """A tenant: its collections, keys and analytics are its own."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("name", name="workspaces_name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    collection_quota: Mapped[int | None] = mapped_column(Integer)  # NULL: the server default
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())


class ApiKey(Base):
    """An API key of a workspace: only the SHA-256 of its secret is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("secret_sha256", name="api_keys_secret"),
        CheckConstraint(
            "scopes <@ ARRAY['read', 'write', 'admin']::text[] AND cardinality(scopes) > 0",
            name="api_keys_scopes",
        ),
        Index("api_keys_workspace", "workspace_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text)
    secret_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    collections: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    principals: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    act_for_principals: Mapped[bool] = mapped_column(Boolean, server_default="false")
    query_per_minute: Mapped[int | None] = mapped_column(Integer)
    ingest_per_minute: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)


class Collection(Base):
    """A named set of documents sharing one embedding space and chunking settings."""

    __tablename__ = "collections"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="collections_workspace_name"),
        CheckConstraint(
            "vector_storage IN ('vector', 'halfvec')", name="collections_vector_storage"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", name="collections_workspace", ondelete="RESTRICT")
    )
    name: Mapped[str] = mapped_column(Text)
    embedder: Mapped[str] = mapped_column(Text)
    dimensions: Mapped[int] = mapped_column(Integer)
    max_input_tokens: Mapped[int] = mapped_column(Integer)
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    language: Mapped[str] = mapped_column(Text, default="english")
    bulk_load: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    # Grounded answers: the collection's own chat model, system prompt and the sentence it
    # answers with when nothing is relevant (NULL: the server's defaults).
    answer_model: Mapped[str | None] = mapped_column(Text)
    answer_prompt: Mapped[str | None] = mapped_column(Text)
    answer_no_context: Mapped[str | None] = mapped_column(Text)
    # Queries, contexts and answers rerank unless a request says otherwise.
    rerank: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    # How many times the collection switched embedding spaces (services/spaces/).
    space_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # `vector` or `halfvec`: the precision of its HNSW index and searches (services/vectors.py)
    vector_storage: Mapped[str] = mapped_column(Text, default="vector", server_default="vector")


class Original(Base):
    """An uploaded file's bytes, once per workspace, used by `refs` documents (kept by a
    trigger, migrations/versions/0013_originals.py)."""

    __tablename__ = "originals"
    __table_args__ = (
        UniqueConstraint("workspace_id", "sha256", name="originals_workspace_sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    bytes: Mapped[int] = mapped_column(BigInteger)
    refs: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ, server_default=func.now())


class OriginalPart(Base):
    """Up to 1 MiB of an original, in order of `part`."""

    __tablename__ = "original_parts"

    original_id: Mapped[int] = mapped_column(
        ForeignKey("originals.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Document(Base):
    """A client document: `version` is its latest accepted text, `indexed_version` the live one."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("collection_id", "external_id", name="documents_collection_external"),
        UniqueConstraint("collection_id", "id", name="documents_collection_id"),
        CheckConstraint(f"status IN ({sql_list(list(DocumentStatus))})", name="documents_status"),
        Index(
            "documents_pending",
            "status",
            "enqueued_at",
            postgresql_where=sql_text(f"status IN ({sql_list(list(PENDING))})"),
        ),
        Index("documents_accepted_at", "accepted_at"),
        Index("documents_original", "original_id"),
        Index(
            "documents_attached_to",
            "collection_id",
            sql_text("(metadata ->> 'attached_to')"),
            postgresql_where=sql_text("metadata ? 'attached_to'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    # Principals who may read it; NULL: every reader of the collection.
    access: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    content: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text, default="text/plain")
    content_hash: Mapped[str] = mapped_column(Text)
    # An uploaded file's bytes; `content` is then the text parsing took from them, and
    # `parsed` the title and metadata it found (kept across a byte-identical upload).
    original_id: Mapped[int | None] = mapped_column(
        ForeignKey("originals.id", name="documents_original")
    )
    parsed: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sql_text("'{}'"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    indexed_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text, default=DocumentStatus.QUEUED.value)
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    embedded_chunks: Mapped[int] = mapped_column(Integer, default=0)
    cached_chunks: Mapped[int] = mapped_column(Integer, default=0)
    embedded_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    accepted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    enqueued_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    embedded_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    finished_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)


class Chunk(Base):
    """A passage of one document version, with its citation offsets and embedding."""

    __tablename__ = "chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "ordinal", "collection_id", name="chunks_document_ordinal"),
        ForeignKeyConstraint(
            ["collection_id", "document_id"],
            ["documents.collection_id", "documents.id"],
            name="chunks_document",
            ondelete="CASCADE",
        ),
        # One partition per collection (services/vectors.py), made with the collection.
        {"postgresql_partition_by": "LIST (collection_id)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(BigInteger)
    doc_version: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary)
    embedding: Mapped[Any] = mapped_column(Vector())
    # The collection's text search configuration, and the vector the `chunks_text_search`
    # trigger computes from it (NULL while the collection is in bulk-load mode).
    ts_config: Mapped[str] = mapped_column(REGCONFIG, server_default=sql_text("'english'"))
    tsv: Mapped[Any | None] = mapped_column(TSVECTOR)
    # The document's access list, copied so retrieval checks it inside the index scans.
    access: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Where the passage sits in its original: {"page": n}, {"start_seconds", "end_seconds"}.
    location: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class EmbeddingCacheEntry(Base):
    """A vector already computed for a chunk text in one embedding space."""

    __tablename__ = "embedding_cache"

    space: Mapped[str] = mapped_column(Text, primary_key=True)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    embedding: Mapped[Any] = mapped_column(Vector())
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())


class IngestBatch(Base):
    """One accepted ingestion request, to poll for progress."""

    __tablename__ = "ingest_batches"
    __table_args__ = (
        Index(
            "ingest_batches_unfinished",
            "created_at",
            postgresql_where=sql_text("finished_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    # set once by the webhook tick when the batch has nothing pending (services/webhooks/)
    finished_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)


class BatchItem(Base):
    """A document of a batch, with the version it was accepted as (or `unchanged`)."""

    __tablename__ = "batch_items"
    __table_args__ = (Index("batch_items_document", "document_id"),)

    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ingest_batches.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    accepted_status: Mapped[str] = mapped_column(Text)


class EmbeddingUsage(Base):
    """One embedding run: what was sent to the embedder, what the cache answered, how long."""

    __tablename__ = "embedding_usage"
    __table_args__ = (Index("embedding_usage_collection_at", "collection_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    collection_id: Mapped[int] = mapped_column(BigInteger)
    document_id: Mapped[int | None] = mapped_column(BigInteger)
    space: Mapped[str] = mapped_column(Text)
    inputs: Mapped[int] = mapped_column(Integer)
    cached: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(Text)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class EmbeddingRequest(Base):
    """One request to an embedding provider (or one local model call), however it ended."""

    __tablename__ = "embedding_requests"
    __table_args__ = (Index("embedding_requests_collection_at", "collection_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    batch_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    collection_id: Mapped[int] = mapped_column(BigInteger)
    space: Mapped[str] = mapped_column(Text)
    inputs: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    rate_limited: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class QueryLogEntry(Base):
    """One query or context request: what was asked (as configured), how it went."""

    __tablename__ = "query_log"
    __table_args__ = (Index("query_log_collection_at", "collection_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    collection_id: Mapped[int] = mapped_column(BigInteger)
    endpoint: Mapped[str] = mapped_column(Text)
    query_text: Mapped[str | None] = mapped_column(Text)
    query_hash: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    k: Mapped[int] = mapped_column(Integer)
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    best_score: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    grounded: Mapped[bool] = mapped_column(Boolean)
    results: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    # Answers only: how it ended, the chat model and its tokens, sentences and unsupported ones.
    answer_status: Mapped[str | None] = mapped_column(Text)
    chat_model: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    sentences: Mapped[int | None] = mapped_column(Integer)
    unsupported_sentences: Mapped[int | None] = mapped_column(Integer)
    # NULL: no rerank asked; false: asked, but the reranker failed or ran out of time.
    reranked: Mapped[bool | None] = mapped_column(Boolean)


class DocumentEventRow(Base):
    """A change of a document's status or version, written by triggers in the transaction
    that made it (migrations/versions/0016_document_events.py); the event streams read it."""

    __tablename__ = "document_events"
    __table_args__ = (
        Index("document_events_collection", "collection_id", "id"),
        Index("document_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(Text)
    access: Mapped[list[str] | None] = mapped_column(ARRAY(Text))


class Webhook(Base):
    """A receiver of a workspace's events (migrations/versions/0017_webhooks.py)."""

    __tablename__ = "webhooks"
    __table_args__ = (Index("webhooks_workspace", "workspace_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    collections: Mapped[list[str] | None] = mapped_column(ARRAY(Text))  # None: all
    secret: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())


class WebhookDelivery(Base):
    """The outbox: one event for one receiver, written in the transaction of its change."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("webhook_deliveries_webhook", "webhook_id", "seq"),
        Index(
            "webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sql_text("status = 'pending'"),
        ),
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="webhook_deliveries_status"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=sql_text("gen_random_uuid()")
    )
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    retry_from: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    last_attempt_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_latency_ms: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)


class WebhookAttempt(Base):
    """One try at delivering an event: when, the receiver's status code, how long."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class EmbeddingPrice(Base):
    """What a provider charges for a model's tokens, as an operator sets it (for analysts)."""

    __tablename__ = "embedding_prices"

    provider: Mapped[str] = mapped_column(Text, primary_key=True)
    model: Mapped[str] = mapped_column(Text, primary_key=True)
    usd_per_million_tokens: Mapped[Decimal] = mapped_column(Numeric(12, 6))


class AuditEntry(Base):
    """One state-changing request: who, what, on which collection and documents, how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("audit_log_workspace_at", "workspace_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    workspace_id: Mapped[int | None] = mapped_column(BigInteger)
    key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    key_name: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    collection: Mapped[str | None] = mapped_column(Text)
    document_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(Text)


class AnalyticsAccess(Base):
    """Which workspaces an analyst role's queries of the analytics views see (none: all)."""

    __tablename__ = "analytics_access"
    __table_args__ = (
        UniqueConstraint("role", "workspace_id", name="analytics_access_role_workspace"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )


class SpaceMigration(Base):
    """A change of a collection's embedder or chunking: its shadow space, from building to
    active or rolled back (migrations/versions/0018_space_migrations.py)."""

    __tablename__ = "space_migrations"
    __table_args__ = (
        Index(
            "space_migrations_open",
            "collection_id",
            unique=True,
            postgresql_where=sql_text("status IN ('building', 'ready')"),
        ),
        Index("space_migrations_collection", "collection_id", "id"),
        CheckConstraint(
            "status IN ('building', 'ready', 'active', 'rolled_back', 'failed')",
            name="space_migrations_status",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(Text, server_default="building")
    embedder: Mapped[str] = mapped_column(Text)
    dimensions: Mapped[int] = mapped_column(Integer)
    max_input_tokens: Mapped[int] = mapped_column(Integer)
    chunk_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    space: Mapped[str] = mapped_column(Text)
    old_embedder: Mapped[str] = mapped_column(Text)
    old_dimensions: Mapped[int] = mapped_column(Integer)
    old_max_input_tokens: Mapped[int] = mapped_column(Integer)
    old_chunk_tokens: Mapped[int] = mapped_column(Integer)
    old_chunk_overlap: Mapped[int] = mapped_column(Integer)
    old_space: Mapped[str] = mapped_column(Text)
    old_threshold: Mapped[float] = mapped_column(Float)
    new_threshold: Mapped[float | None] = mapped_column(Float)
    threshold_method: Mapped[str | None] = mapped_column(Text)
    threshold_detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    ready_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    activated_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    rolled_back_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    ended_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    drop_after: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    dropped_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)


class SpaceDocument(Base):
    """A document's state in a migration's shadow space: wanted and built versions, counts."""

    __tablename__ = "space_documents"
    __table_args__ = (
        ForeignKeyConstraint(
            ["collection_id", "document_id"],
            ["documents.collection_id", "documents.id"],
            name="space_documents_document",
            ondelete="CASCADE",
        ),
        Index("space_documents_document", "document_id"),
    )

    migration_id: Mapped[int] = mapped_column(
        ForeignKey("space_migrations.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    built_version: Mapped[int | None] = mapped_column(Integer)
    enqueued_at: Mapped[datetime] = mapped_column(TIMESTAMPTZ, server_default=func.now())
    built_at: Mapped[datetime | None] = mapped_column(TIMESTAMPTZ)
    chunk_count: Mapped[int] = mapped_column(Integer, server_default="0")
    token_count: Mapped[int] = mapped_column(Integer, server_default="0")
    embedded: Mapped[int] = mapped_column(Integer, server_default="0")
    cached: Mapped[int] = mapped_column(Integer, server_default="0")
    embedded_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
