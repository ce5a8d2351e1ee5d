"""Keeps a batch's processing leases alive while a worker is busy with it.

A lease runs out only when its holder stops renewing it: a killed worker's documents are sent
again by the sweeper after one lease, while a live worker waiting minutes on a rate-limited
provider keeps its documents.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType

from services.db import Database
from workers.claims import renew_leases
from workers.work import DocumentWork

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of `works` every third of `lease_s` until the block ends."""

    def __init__(self, database: Database, works: Sequence[DocumentWork], lease_s: float) -> None:
        self.database = database
        self.works = list(works)
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with self.database.scope() as session:
                    owned = renew_leases(session, self.works, self.lease_s)
                self.works = [w for w in self.works if w.id in owned]
            except Exception as error:  # the next renewal, or the sweeper, will tell
                log.warning("could not renew leases: %s", error)
            if not self.works:
                return

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
