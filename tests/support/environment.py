"""The test run's own inputs, and settings built only from what a test says.

The caller's shell may hold `GROUNDWIRE_*`, `DATABASE_URL`, `OPENAI_*` variables of a running
deployment; none of them may reach a test. `harness()` (called once as the test session
starts) reads the harness's own inputs and removes every variable the settings object reads,
so `Settings(...)` and every process a test starts see only what the test passes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from services.config import Settings


@dataclass(frozen=True)
class Harness:
    """What the person or CI running the tests asked for."""

    redis_url: str | None  # a Redis to use (CI: the machine's); else one is started
    faults: str | None  # "all" runs the full fault scenarios
    faults_scale: int
    faults_report: str | None  # a JSON lines file for fault scenario figures
    analytics_beir: str | None  # a BEIR folder for the analytics test's documents
    schemathesis_examples: int  # fuzzed cases per operation in the conformance run
    replica_rounds: int  # write-then-query rounds of the read replica test


@lru_cache(maxsize=1)
def harness() -> Harness:
    """Reads the harness's inputs, then removes every settings variable from this process.

    The first call (tests/conftest.py, as the session starts) isolates; later calls return
    what it read.
    """
    harness = Harness(
        redis_url=os.environ.get("REDIS_URL"),
        faults=os.environ.get("GROUNDWIRE_FAULTS"),
        faults_scale=int(os.environ.get("GROUNDWIRE_FAULTS_SCALE", "1")),
        faults_report=os.environ.get("GROUNDWIRE_FAULTS_REPORT"),
        analytics_beir=os.environ.get("GROUNDWIRE_ANALYTICS_BEIR"),
        schemathesis_examples=int(os.environ.get("GROUNDWIRE_SCHEMATHESIS_EXAMPLES", "15")),
        replica_rounds=int(os.environ.get("GROUNDWIRE_REPLICA_ROUNDS", "100")),
    )
    read = {name for names in Settings.variables().values() for name in names}
    for name in list(os.environ):
        if name.startswith("GROUNDWIRE_") or name in read:
            del os.environ[name]
    return harness


def settings_from(env: dict[str, str], **overrides: Any) -> Settings:
    """Builds settings from `env` (variable names as a deployment would set them) alone."""
    return Settings.from_env(env, **overrides)
