"""Read-only access for analysts: the `analytics` schema's views, and nothing else.

The views run with their owner's rights (PostgreSQL's default for views), so a role granted
SELECT on them reads the answers without any right on the tables underneath. They are
security-barrier views that show a role only the workspaces `analytics_access` lists for it
(migration 0011): granting a role a workspace adds that row; granting it without one lets it
see every workspace.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from groundwire.embedded_access import ANALYSTS_ROLE
from services.db import libpq_url

SCHEMA = "analytics"


def grant_statements(role: str) -> list[sql.Composed]:
    """Returns the statements that let `role` read every analytics view, now and later."""
    who = sql.Identifier(role)
    schema = sql.Identifier(SCHEMA)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, who),
        # Views added by later migrations (run by the same owner) are readable too.
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
            schema, who
        ),
    ]


def create_role_statement(role: str, password: str | None) -> sql.Composed:
    """Returns CREATE ROLE for a login role with no other rights."""
    if password is None:
        return sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role))
    return sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(password)
    )


def _role_exists(conn: psycopg.Connection[tuple[object, ...]], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


class UnknownWorkspace(ValueError):
    """No workspace has that name."""


def grant(
    database_url: str,
    role: str,
    *,
    create: bool = False,
    password: str | None = None,
    workspace: str | None = None,
) -> None:
    """Grants `role` read access to the analytics views (creating the role first if asked):
    to the rows of `workspace` only, or of every workspace when none is named. A `password`
    is set on the role, new or not. In one transaction."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        if create and not _role_exists(conn, role):
            conn.execute(create_role_statement(role, password))
        elif password is not None:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        if _role_exists(conn, ANALYSTS_ROLE):  # the embedded server lets it in over loopback
            member = sql.SQL("GRANT {} TO {}")
            conn.execute(member.format(sql.Identifier(ANALYSTS_ROLE), sql.Identifier(role)))
        workspace_id = None
        if workspace is not None:
            row = conn.execute("SELECT id FROM workspaces WHERE name = %s", [workspace]).fetchone()
            if row is None:
                raise UnknownWorkspace(f"no workspace named {workspace!r}")
            workspace_id = int(row[0])
        conn.execute(
            "INSERT INTO analytics_access (role, workspace_id) SELECT %(role)s, %(ws)s"
            " WHERE NOT EXISTS (SELECT 1 FROM analytics_access"
            " WHERE role = %(role)s AND workspace_id IS NOT DISTINCT FROM %(ws)s)",
            {"role": role, "ws": workspace_id},
        )
        for statement in grant_statements(role):
            conn.execute(statement)
