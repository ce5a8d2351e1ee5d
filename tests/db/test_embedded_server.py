"""The embedded PostgreSQL takes no TCP connections and only its own user may open its
socket: trust authentication on a socket other local users could reach would hand them the
superuser."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg

from groundwire.embedded import EmbeddedPostgres


def test_the_socket_is_private_and_there_is_no_tcp(postgres: EmbeddedPostgres) -> None:
    query = parse_qs(urlsplit(postgres.url).query)
    socket_dir = Path(query["host"][0])
    sockets = list(socket_dir.glob(".s.PGSQL.*"))
    sockets = [s for s in sockets if stat.S_ISSOCK(s.stat().st_mode)]
    assert sockets, f"no socket in {socket_dir}"
    assert all(stat.S_IMODE(s.stat().st_mode) == 0o700 for s in sockets)
    with psycopg.connect(postgres.url) as conn:
        row = conn.execute(
            "SELECT current_setting('listen_addresses'), current_setting('unix_socket_permissions')"
        ).fetchone()
    assert row == ("", "0700")
