"""Who may connect to the embedded PostgreSQL, and as whom.

The service connects as its own role (`groundwire`: owner of its database, no superuser), on
the server's private socket, with peer authentication: the server asks the kernel which local
user opened the socket and lets only the user that runs Groundwire in, whatever the socket's
file mode. Analysts' roles (members of `groundwire_analysts`) may also connect over TCP on
127.0.0.1 when `GROUNDWIRE_ANALYTICS_PORT` is set, with their password (SCRAM); no other role
(not the superuser, not the service) is let in over TCP.
"""

from __future__ import annotations

import os
import pwd

import psycopg
from psycopg import sql

SERVICE_ROLE = "groundwire"
ANALYSTS_ROLE = "groundwire_analysts"
IDENT_MAP = "groundwire"


def local_user() -> str | None:
    """The name of the local user this process runs as; None when it has none (a bare uid)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


def hba_conf(user: str | None) -> str:
    """pg_hba.conf: peer on the socket for `user` (as any role), SCRAM over loopback TCP for
    analysts only. Without a user name peer cannot work, and the socket's mode (0700) is then
    the only guard, as before."""
    socket_rule = f"local all all peer map={IDENT_MAP}" if user else "local all all trust"
    return "\n".join(
        [
            "# Written by Groundwire at every start; edits are overwritten.",
            socket_rule,
            f"host all +{ANALYSTS_ROLE} 127.0.0.1/32 scram-sha-256",
            f"host all +{ANALYSTS_ROLE} ::1/128 scram-sha-256",
            "",
        ]
    )


def ident_conf(user: str | None) -> str:
    """pg_ident.conf: the local `user` may connect as any role (it owns the server's files)."""
    lines = ["# Written by Groundwire at every start; edits are overwritten."]
    if user:
        lines.append(f"{IDENT_MAP} {user} all")
    return "\n".join([*lines, ""])


def ensure_roles(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Creates the service role (LOGIN, CREATEROLE for analysts' roles, no superuser) and the
    analysts' group it may hand out. Run as the superuser, in autocommit."""
    for role, options in ((SERVICE_ROLE, "LOGIN CREATEROLE"), (ANALYSTS_ROLE, "NOLOGIN")):
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))
    conn.execute(
        sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
            sql.Identifier(ANALYSTS_ROLE), sql.Identifier(SERVICE_ROLE)
        )
    )


# Hands what an earlier version created as the superuser over to the service role: schemas,
# tables, views, sequences not owned by a column, functions and types, but nothing that
# belongs to an extension (pgvector's types stay the superuser's). Run on every start: once
# everything is the service's, it finds nothing to do.
_HAND_OVER = sql.SQL("""
DO $$
DECLARE
    r record;
    service CONSTANT text := {service};
    superuser CONSTANT oid := 10;  -- the bootstrap superuser initdb made
BEGIN
    FOR r IN SELECT n.nspname FROM pg_namespace n
             WHERE n.nspowner = superuser
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname NOT IN ('information_schema', 'public')
    LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, service);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relowner = superuser AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
               AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
             ORDER BY c.relkind = 'S'  -- tables first: their columns' sequences go with them
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', r.name, service);
    END LOOP;
    FOR r IN SELECT o.kind, o.name FROM (
                 SELECT 'ROUTINE' AS kind, p.oid::regprocedure::text AS name, p.oid,
                        'pg_proc'::regclass AS catalog, p.pronamespace AS namespace
                 FROM pg_proc p WHERE p.proowner = superuser
                 UNION ALL
                 SELECT 'TYPE', t.oid::regtype::text, t.oid, 'pg_type'::regclass, t.typnamespace
                 FROM pg_type t WHERE t.typowner = superuser AND t.typtype IN ('e', 'd', 'r', 'm')
             ) o
             JOIN pg_namespace n ON n.oid = o.namespace
             WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.catalog
                               AND d.objid = o.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', r.kind, r.name, service);
    END LOOP;
END
$$
""")


def hand_over(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Makes the service role own its database and everything in it (pgvector installed by the
    superuser first, since the service may not), keeping analysts' grants on the views that
    later migrations add. Run as the superuser, connected to the service's database."""
    conn.execute(
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(SERVICE_ROLE)
        )
    )
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(_HAND_OVER.format(service=sql.Literal(SERVICE_ROLE)))
    if not _has_analytics(conn):
        return
    analysts = conn.execute(
        "SELECT DISTINCT a.role FROM analytics_access a JOIN pg_roles r ON r.rolname = a.role"
    ).fetchall()
    for (role,) in analysts:
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA analytics"
                " GRANT SELECT ON TABLES TO {}"
            ).format(sql.Identifier(SERVICE_ROLE), sql.Identifier(str(role)))
        )


def _has_analytics(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute(
        "SELECT to_regclass('public.analytics_access') IS NOT NULL"
        " AND to_regnamespace('analytics') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])
