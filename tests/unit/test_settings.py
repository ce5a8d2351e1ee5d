"""Settings come from one place: the environment a process is given, read once; what the
embedded default keeps on disk is its owner's alone."""

from __future__ import annotations

import os
from pathlib import Path

import redis

from groundwire.embedded import start_redis
from services.config import DEFAULT_REDIS_URL, Settings


def test_the_callers_own_settings_never_reach_a_test() -> None:
    leaked = [k for k in os.environ if k.startswith("GROUNDWIRE_")]
    leaked += [k for k in ("DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL") if k in os.environ]
    assert leaked == []
    assert Settings().model_dump() == Settings.from_env({}).model_dump()


def test_settings_from_an_environment_read_only_that_environment() -> None:
    env = {
        "DATABASE_URL": "postgresql://db.internal/groundwire",
        "GROUNDWIRE_INGEST_QUEUE": "ingest-a",
        "OPENAI_API_KEY": "sk-test",
        "GROUNDWIRE_LOCAL_THREADS": "3",
    }
    os.environ["GROUNDWIRE_EMBED_QUEUE"] = "from-this-process"
    try:
        settings = Settings.from_env(env, query_log="hash")
    finally:
        del os.environ["GROUNDWIRE_EMBED_QUEUE"]
    assert settings.database_url == env["DATABASE_URL"]
    assert (settings.ingest_queue, settings.embed_queue) == ("ingest-a", "embed")
    assert settings.local_threads == 3 and settings.query_log == "hash"
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(settings)
    assert settings.broker_redis_url() == DEFAULT_REDIS_URL


def test_every_setting_names_its_variables() -> None:
    variables = Settings.variables()
    assert variables["database_url"] == ["GROUNDWIRE_DATABASE_URL", "DATABASE_URL"]
    assert variables["ingest_batch_documents"] == ["GROUNDWIRE_INGEST_BATCH_DOCUMENTS"]
    assert set(variables) == set(Settings.model_fields)


def test_the_embedded_redis_keeps_its_files_private(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "data", persistent=True)
    try:
        assert redis.Redis.from_url(server.url).set("k", "v")
    finally:
        server.stop()
    directory = tmp_path / "data" / "redis"
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert directory.stat().st_mode & 0o777 == 0o700
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o077 == 0 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]


def test_file_settings_and_the_files_a_task_takes() -> None:
    defaults = Settings()
    assert defaults.max_file_bytes == 100 * 1024 * 1024 and defaults.parse_timeout_s == 120
    assert defaults.transcribe_model == "whisper-1"
    assert defaults.files_per_task() == 6  # 6 x 120 s of parsing fits a 900 s task
    assert Settings(parse_timeout_s=900).files_per_task() == 1
    old_name = Settings.model_validate({"GROUNDWIRE_PARSE_TIME_LIMIT_S": "30"})
    assert old_name.parse_timeout_s == 30
