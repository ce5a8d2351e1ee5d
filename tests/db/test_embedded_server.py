"""Who may reach the embedded PostgreSQL: the service as its own role (no superuser) on a
socket only its user may open, with peer authentication; analysts' roles over loopback TCP
with a password when a port is configured; nobody else, and no TCP at all by default."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from groundwire import migrate
from groundwire.analytics import grant
from groundwire.embedded import EmbeddedPostgres, embedded_database_url, start_postgres


def test_the_socket_is_private_and_there_is_no_tcp(postgres: EmbeddedPostgres) -> None:
    query = parse_qs(urlsplit(postgres.url).query)
    socket_dir = Path(query["host"][0])
    sockets = list(socket_dir.glob(".s.PGSQL.*"))
    sockets = [s for s in sockets if stat.S_ISSOCK(s.stat().st_mode)]
    assert sockets, f"no socket in {socket_dir}"
    assert all(stat.S_IMODE(s.stat().st_mode) == 0o700 for s in sockets)
    superuser = postgres.url.replace("postgresql://groundwire@", "postgresql://postgres@")
    with psycopg.connect(superuser) as conn:
        row = conn.execute(
            "SELECT current_setting('listen_addresses'), current_setting('unix_socket_permissions')"
        ).fetchone()
        rules = conn.execute(
            "SELECT type, auth_method, options FROM pg_hba_file_rules WHERE error IS NULL"
        ).fetchall()
    assert row == ("", "0700")
    # The socket lets in the local user that runs Groundwire alone, by peer authentication.
    assert [(method, options) for kind, method, options in rules if kind == "local"] == [
        ("peer", ["map=groundwire"])
    ]


def test_the_service_has_its_own_role_and_it_is_no_superuser(
    postgres: EmbeddedPostgres, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        who = conn.execute(
            "SELECT current_user, rolsuper, (SELECT tableowner FROM pg_tables"
            " WHERE tablename = 'documents') FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert who == ("groundwire", False, "groundwire")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER SYSTEM SET work_mem = '64MB'")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Connection = psycopg.Connection[tuple[object, ...]]


def tcp(port: int, user: str, password: str | None = None) -> Connection:
    return psycopg.connect(
        host="127.0.0.1", port=port, user=user, password=password, dbname="gw", connect_timeout=5
    )


def test_analysts_reach_it_over_loopback_with_a_password_and_no_one_else(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    server = start_postgres(data, database="gw", analyst_port=port)
    try:
        migrate.upgrade(server.url)
        grant(server.url, "analyst", create=True, password="correct horse")
        grant(server.url, "no_password", create=True)
        with tcp(port, "analyst", "correct horse") as conn:
            row = conn.execute("SELECT count(*) FROM analytics.documents").fetchone()
            assert row == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM public.api_keys")
        refused = [
            ("analyst", "wrong"),
            ("no_password", None),
            ("no_password", ""),
            ("groundwire", None),  # the service: socket only
            ("postgres", None),  # the superuser: socket only
            ("postgres", "postgres"),
        ]
        for user, password in refused:
            with pytest.raises(psycopg.OperationalError):
                tcp(port, user, password).close()
        # A password set later on an existing role lets it in too.
        grant(server.url, "no_password", password="now it has one")
        tcp(port, "no_password", "now it has one").close()
    finally:
        server.stop()
    # Started again without the port, it takes no TCP connections.
    server = start_postgres(data, database="gw")
    try:
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone() == ("",)
        with pytest.raises(psycopg.OperationalError):
            tcp(port, "analyst", "correct horse").close()
    finally:
        server.stop()


def test_what_an_earlier_version_made_as_the_superuser_is_handed_to_the_service(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_postgres(data, database="gw")
    try:
        superuser = embedded_database_url(data, user="postgres", database="gw")
        assert superuser is not None
        with psycopg.connect(superuser, autocommit=True) as conn:
            conn.execute("ALTER DATABASE gw OWNER TO postgres")
            conn.execute("CREATE SCHEMA old_schema")
            conn.execute("CREATE TABLE old_schema.t (id serial PRIMARY KEY, tag text)")
            conn.execute("CREATE VIEW public.v AS SELECT id FROM old_schema.t")
            conn.execute("CREATE SEQUENCE public.loose")
            conn.execute("CREATE TYPE public.mood AS ENUM ('ok')")
            conn.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    finally:
        server.stop()
    server = start_postgres(data, database="gw")
    try:
        with psycopg.connect(server.url) as conn:
            owners = [
                conn.execute(query).fetchone()
                for query in (
                    "SELECT datdba::regrole::text FROM pg_database WHERE datname = 'gw'",
                    "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'old_schema'",
                    "SELECT relowner::regrole::text FROM pg_class WHERE relname = 't'",
                    "SELECT relowner::regrole::text FROM pg_class WHERE relname = 't_id_seq'",
                    "SELECT relowner::regrole::text FROM pg_class WHERE relname = 'v'",
                    "SELECT relowner::regrole::text FROM pg_class WHERE relname = 'loose'",
                    "SELECT typowner::regrole::text FROM pg_type WHERE typname = 'mood'",
                    "SELECT proowner::regrole::text FROM pg_proc WHERE proname = 'f'",
                    "SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'vector'",
                )
            ]
            conn.execute("INSERT INTO old_schema.t (tag) VALUES ('the service may write')")
        assert owners == [("groundwire",)] * 8 + [("postgres",)]
    finally:
        server.stop()
