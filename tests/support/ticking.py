"""The migration tick run in the test's process, as beat would send it, while a block runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from services.runtime import Runtime
from workers import space_driver


@contextmanager
def migration_ticks(runtime: Runtime, every_s: float = 0.2) -> Iterator[None]:
    """Runs `space_driver.tick` every `every_s` in a thread until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            space_driver.tick(runtime)
            stop.wait(every_s)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
