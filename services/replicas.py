"""Reads from a streaming replica, with read-your-writes.

Every write that changes what a collection's searches return (documents written or deleted
by the workers and the API, access lists, settings, a switch of embedding space) is followed,
once committed, by recording the primary's WAL position in Redis under the collection
(`WritePositions.record`, keeping the largest). A read of the collection on the replica first
waits, up to `read_replica_wait_ms`, for the replica to have replayed that position; if it has
not by then, the read goes to the primary. So a document that a batch reports `done` is found
by the next query, however far the replica lags, and a lagging replica costs at most the wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.metrics import READS

log = logging.getLogger(__name__)

KEY = "groundwire:wal:{}:collection:{}"
TTL_S = 24 * 3600  # a collection unwritten for a day needs no waiting for
POLL_S = 0.005

# Sets the key to the position when it is larger than what the key holds.
_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""

_CURRENT = text("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
# Positions are of one cluster's WAL: keys name the cluster (and the database, whose
# collection ids are its own), so a Redis shared with another database never mixes them.
_SCOPE = text(
    "SELECT system_identifier::text || ':' || current_database() FROM pg_control_system()"
)
_REPLAYED = text("SELECT coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)")


def current_position(session: Session) -> int:
    """The primary's WAL position now (after what the caller committed)."""
    return int(session.execute(_CURRENT).scalar_one())


class WritePositions:
    """The latest write position of each collection, shared in Redis by every process."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self._max = self.client.register_script(_MAX)
        self._scope: str | None = None

    def scope(self, primary: Session) -> str:
        """The cluster and database the positions are of (read once from the primary)."""
        if self._scope is None:
            try:
                with primary.begin_nested():
                    self._scope = str(primary.execute(_SCOPE).scalar_one())
            except DBAPIError:  # pg_control_system() refused: the database's name alone
                self._scope = str(primary.execute(text("SELECT current_database()")).scalar_one())
        return self._scope

    def record(self, primary: Session, collection_ids: Iterable[int], position: int) -> None:
        """Notes that the collections were written up to `position`."""
        scope = self.scope(primary)
        for collection_id in set(collection_ids):
            self._max(keys=[KEY.format(scope, int(collection_id))], args=[position, TTL_S])

    def of(self, primary: Session, collection_id: int) -> int:
        """The collection's latest write position (0: none known)."""
        found = self.client.get(KEY.format(self.scope(primary), int(collection_id)))
        return int(found) if found is not None else 0


def caught_up(reader: Session, position: int, wait_s: float) -> bool:
    """Waits up to `wait_s` for the replica behind `reader` to replay `position`; whether it
    did. Counted in the metrics either way."""
    deadline = time.monotonic() + wait_s
    while True:
        replayed = int(reader.execute(_REPLAYED).scalar_one())
        if replayed >= position:
            READS.labels("replica").inc()
            return True
        if time.monotonic() >= deadline:
            READS.labels("primary").inc()
            log.info("the replica is %d bytes behind the write: reading the primary",
                     position - replayed)  # fmt: skip
            return False
        time.sleep(POLL_S)
