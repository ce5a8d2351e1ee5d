"""One settings object for every Groundwire process, read from the environment.

A process reads it once when it starts (`Settings()`) and hands it down: the API's lifespan,
the worker's process init and each command build their dependencies from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    """Typed configuration; each field reads `GROUNDWIRE_<NAME>` unless an alias says otherwise."""

    model_config = SettingsConfigDict(
        env_prefix="GROUNDWIRE_", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GROUNDWIRE_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GROUNDWIRE_REDIS_URL", "REDIS_URL")
    )
    # A streaming replica for queries, contexts and answers (services/replicas.py). A read
    # waits up to read_replica_wait_ms for the replica to replay the collection's last write,
    # else it reads the primary.
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GROUNDWIRE_DATABASE_READ_URL", "DATABASE_READ_URL"),
    )
    read_replica_wait_ms: float = Field(default=1000.0, ge=0)

    # OpenAI or any OpenAI-compatible provider; the client's own variables are honoured.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GROUNDWIRE_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("GROUNDWIRE_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    openai_dimensions: int | None = None
    openai_timeout_s: float = 60.0
    openai_max_retries: int = 4
    openai_max_inputs_per_request: int = 2048
    openai_max_tokens_per_request: int = 300_000
    openai_max_tokens_per_input: int = 8192
    # Chunk texts per embedding task, per provider: a task's texts fill as few requests as
    # the request limits above allow, across documents.
    openai_batch_inputs: int = 2048
    # A budget shared by all workers through Redis; unset means no local limit.
    openai_requests_per_minute: int | None = None
    openai_tokens_per_minute: int | None = None

    # Bundled local model.
    local_threads: int = 2
    local_batch_size: int = 8
    local_batch_inputs: int = 256
    hash_batch_inputs: int = 1024

    # Ingestion limits.
    max_body_bytes: int = 64 * 1024 * 1024
    max_document_bytes: int = 8 * 1024 * 1024
    max_metadata_bytes: int = 64 * 1024
    # An uploaded file (POST /v1/collections/{name}/files): larger ones get 413, none kept.
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_upload_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)  # all files of a request

    # Workers and broker.
    ingest_queue: str = "ingest"
    embed_queue: str = "embed"
    # Documents per parse-and-chunk task (the API and the sweeper group ids into tasks), and
    # at most this much content per task. Provider-backed collections take more documents per
    # task, so that small documents fill provider requests.
    ingest_batch_documents: int = 32
    openai_ingest_batch_documents: int = 512
    ingest_batch_characters: int = 8_000_000
    visibility_timeout_s: int = 3600
    task_max_retries: int = 8
    # Seconds a document may take to parse (in a child process that is then killed), and the
    # memory that child may map; past either the document fails as `parse`.
    parse_timeout_s: float = Field(
        default=120.0,
        gt=0,
        validation_alias=AliasChoices(
            "GROUNDWIRE_PARSE_TIMEOUT_S", "GROUNDWIRE_PARSE_TIME_LIMIT_S"
        ),
    )
    parse_memory_bytes: int = Field(default=4 * 1024**3, ge=256 * 1024**2)
    # Pages of a PDF (or slides, sheets) past which a file fails as `parse`; scanned pages
    # and images are read by OCR unless `ocr` is off.
    max_pages: int = Field(default=5000, ge=1)
    # Characters of text a file may give (a small CSV whose long headers name every cell, or
    # a document of repeated text, can expand far past its size): past it, a `parse` failure.
    max_parsed_chars: int = Field(default=50_000_000, ge=1000)
    ocr: bool = True
    # Audio is transcribed through the OpenAI audio API with this model (any OpenAI-compatible
    # server through OPENAI_BASE_URL), or offline with `local:tiny.en` (the `audio` extra).
    transcribe_model: str = "whisper-1"
    # Seconds a task may run: past the soft limit its documents fail as `gave_up`; at the hard
    # limit the worker kills it (a redelivery then counts as another attempt).
    task_soft_time_limit_s: float = 900.0
    task_time_limit_s: float = 960.0
    # Claims per document version before it fails as `gave_up` (a document that keeps
    # killing its worker): above 1 + task_max_retries, so transient retries are never cut off.
    document_max_attempts: int = 12
    task_retry_backoff_max_s: int = 600
    # A port for the worker's Prometheus endpoint (needs PROMETHEUS_MULTIPROC_DIR, see
    # services/metrics.py); unset serves none.
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"  # the endpoint has no key: loopback unless told
    # The embedded PostgreSQL also listens on 127.0.0.1 at this port, for analysts' roles with
    # a password (see groundwire/embedded_access.py); unset, it takes no TCP connections.
    analytics_port: int | None = Field(default=None, ge=1, le=65535)
    sweep_interval_s: float = 30.0
    queued_grace_s: float = 120.0
    processing_lease_s: float = 900.0

    # Queries. The query log keeps the question's `text`, only its `hash`, or nothing (`off`).
    query_log: Literal["text", "hash", "off"] = "text"

    # Grounded answers: the chat model, on its own server if need be (else the OpenAI
    # settings above), a request's timeout and retries, and the support score under which a
    # sentence counts as unsupported by the passages it cites (calibrated: docs/answers.md).
    chat_model: str = "gpt-4o-mini"
    chat_base_url: str | None = None
    chat_api_key: SecretStr | None = None
    chat_timeout_s: float = Field(default=60.0, gt=0)
    chat_max_retries: int = Field(default=2, ge=0, le=10)
    chat_max_tokens: int = Field(default=800, ge=16, le=32_000)
    # The chat server's rate limits: one budget in Redis shared by every API process (as the
    # embedding provider's); unset means none kept here.
    chat_requests_per_minute: int | None = Field(default=None, ge=1)
    chat_tokens_per_minute: int | None = Field(default=None, ge=1)
    support_threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: calibrated
    # How support is scored (services/answers/checkers.py): `lexical`, `judge` (the chat
    # model asked once more; support_judge_model, else the answer's model) or `local:<name>`
    # (an ONNX cross-encoder of kind `support` in the models folder).
    support_check: str = Field(
        default="lexical", pattern=r"^(lexical|judge|local:[A-Za-z0-9][A-Za-z0-9._-]{0,99})$"
    )
    support_judge_model: str | None = None
    no_context_answer: str = "I don't know: nothing in the documents I can search answers that."

    # Reranking (docs/rerank.md): a `/rerank` API (TEI, Cohere or Jina request format) at
    # rerank_url, or `local:<name>`, an ONNX cross-encoder in models_dir/<name>/. The top
    # rerank_depth passages over the threshold are reordered within rerank_budget_ms, else
    # the retrieval order stands (the answer says `reranked: false`).
    rerank_url: str | None = None
    rerank_format: Literal["tei", "cohere", "jina"] = "tei"
    rerank_model: str | None = None
    rerank_api_key: SecretStr | None = None
    rerank_budget_ms: int = Field(default=1000, ge=10, le=60_000)
    rerank_depth: int = Field(default=30, ge=2, le=200)
    models_dir: Path | None = None  # operators' own models; None: data_dir/models

    # Identity and access. The server admin key manages workspaces and acts in any of them;
    # `groundwire up` creates one under its data directory when none is set.
    admin_key: SecretStr | None = None
    # Requests per minute per key, unless the key sets its own (the server admin key has none).
    rate_limit_query_per_minute: int | None = 600
    rate_limit_ingest_per_minute: int | None = 300
    workspace_collection_quota: int = 1000

    # The HTTP server (services/serve.py). Host names a request may carry besides loopback
    # (localhost, 127.0.0.1, [::1]) and the address it reached the server at: comma-separated,
    # `.example.com` takes its subdomains too, `*` any Host. Any other Host gets 421, so a web
    # page cannot drive an API bound to loopback through DNS rebinding.
    allowed_hosts: str = ""
    # Seconds a request's line and headers may take to arrive. A body must arrive at
    # body_min_rate bytes a second over every body_timeout_s (else 408 and the connection
    # closes), and a response must drain to its reader within body_timeout_s of stalling.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    body_min_rate: int = 64 * 1024
    # Per API process: open connections (past it a new one displaces the one idle or stalled
    # longest, else it gets 503), requests processed at once (past it 503 with Retry-After at
    # once; health probes have a reserve of their own), and bytes of bodies over 1 MiB held at
    # once (a body that would pass it gets 503 before it is read).
    max_connections: int = 4096
    max_inflight_requests: int = 32
    max_inflight_body_bytes: int = 128 * 1024 * 1024
    # Log records a second per message (bursts of five seconds' worth): a flood of one warning
    # cannot fill the disk; the next record let through says how many were dropped.
    log_rate_per_s: float = 20.0

    # Event streams: a heartbeat comment this often on an idle stream; events kept this long
    # for clients that reconnect with Last-Event-ID (older ones are deleted by the sweeper).
    events_heartbeat_s: float = Field(default=15.0, gt=0)
    events_retention_s: float = Field(default=7 * 24 * 3600, gt=0)

    # Webhooks (services/webhooks/). URLs that resolve to private, loopback or link-local
    # addresses are refused unless allowed. Beat runs the delivery tick every
    # webhook_poll_s on webhook_queue; a failed delivery is tried again after
    # webhook_retry_base_s, doubling up to webhook_retry_max_s, until webhook_retry_for_s
    # after the event; a receiver gets webhook_timeout_s to answer. The sweeper deletes
    # finished deliveries after webhook_retention_s.
    webhook_allow_private: bool = False
    webhook_queue: str = "webhooks"
    webhook_poll_s: float = Field(default=1.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_retry_base_s: float = Field(default=5.0, gt=0)
    webhook_retry_max_s: float = Field(default=3600.0, gt=0)
    webhook_retry_for_s: float = Field(default=24 * 3600.0, gt=0)
    webhook_concurrency: int = Field(default=8, ge=1, le=64)
    # delivered and failed deliveries (with their attempts) are deleted after this
    webhook_retention_s: float = Field(default=7 * 24 * 3600, gt=0)

    # Embedding-space migrations (services/spaces/). Beat runs the migration tick every
    # migration_poll_s: it hands out the documents a shadow space lacks, at most
    # migration_batch_documents per tick (again after migration_lease_s if a build was lost),
    # and finishes builds. Activating waits up to migration_activate_wait_s for documents
    # changed meanwhile to be caught up. An activated migration keeps the old space for
    # migration_retain_hours (rollback is possible until then), then drops it.
    migration_poll_s: float = Field(default=2.0, gt=0)
    migration_batch_documents: int = Field(default=5000, ge=1)
    migration_lease_s: float = Field(default=600.0, gt=0)
    migration_activate_wait_s: float = Field(default=30.0, ge=0)
    migration_retain_hours: float = Field(default=72.0, ge=0)

    # Clients (the CLI): the key they send, else the admin key `groundwire up` wrote here.
    api_key: SecretStr | None = None
    url: str | None = None  # the API's URL; else the one `groundwire up` wrote in data_dir
    data_dir: Path = Path(".groundwire")

    @field_validator(
        "database_url",
        "database_read_url",
        "redis_url",
        "openai_api_key",
        "openai_base_url",
        "chat_base_url",
        "chat_api_key",
        "rerank_url",
        "rerank_model",
        "rerank_api_key",
        "url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`VAR=` (as compose writes `${VAR:-}`) means unset, not an empty URL or key."""
        return None if isinstance(value, str) and not value.strip() else value

    def files_per_task(self) -> int:
        """Uploaded files one parse task takes: as many as can each take the whole parse
        timeout and leave the task inside its soft time limit (a file's parse is bounded, a
        task of 32 scans would not be), at least one."""
        return max(1, int(self.task_soft_time_limit_s // self.parse_timeout_s) - 1)

    def models_folder(self) -> Path:
        """Returns the folder of operators' own models (one folder per model)."""
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    def broker_redis_url(self) -> str:
        """Returns the Redis URL of the broker: the configured one, else a local server's."""
        return self.redis_url or DEFAULT_REDIS_URL

    @classmethod
    def variables(cls) -> dict[str, list[str]]:
        """Returns, per field, the environment variables it is read from (first one wins)."""
        names: dict[str, list[str]] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names[name] = [str(choice) for choice in alias.choices]
            else:
                names[name] = [f"GROUNDWIRE_{name.upper()}"]
        return names

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Returns settings read from `env` alone, as a process given exactly that
        environment would read them; this process's own environment is not consulted."""
        values: dict[str, Any] = {}
        for name, variables in cls.variables().items():
            found = next((env[v] for v in variables if v in env), None)
            if found is not None:
                values[name] = found
        values.update(overrides)
        return _GivenOnly(**values)


class _GivenOnly(Settings):
    """Settings that read nothing but the values passed to them."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given to the constructor."""
        return (init_settings,)


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
