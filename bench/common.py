"""Shared set-up for benchmarks: a migrated database (embedded unless DATABASE_URL is set)."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from services import migrate


@contextmanager
def database() -> Iterator[str]:
    """Yields the URL of a migrated database: DATABASE_URL, else a throwaway embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        migrate.upgrade(url)
        yield url
        return
    from services.embedded import start_postgres

    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        server = start_postgres(Path(tmp), database="bench")
        try:
            migrate.upgrade(server.url)
            yield server.url
        finally:
            server.stop()


def median_of(repeats: int, run: Callable[[], float]) -> float:
    """Runs `run` `repeats` times and returns the median of what it returns."""
    return statistics.median(run() for _ in range(repeats))
