"""Identity and access: workspaces own collections; API keys with scopes, collection lists,
principals and rate limits; document access lists (copied onto their chunks, so retrieval
checks them inside the index scans); an audit trail of every state-changing request.

Existing collections move to a workspace named `default`.

Revision ID: 0010_identity
Revises: 0009_uncompressed_text
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision: str = "0010_identity"
down_revision: str | None = "0009_uncompressed_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")
TEXTS = ARRAY(sa.Text)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("collection_quota", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.UniqueConstraint("name", name="workspaces_name"),
    )
    op.execute("INSERT INTO workspaces (name) VALUES ('default')")
    op.add_column(
        "collections",
        sa.Column(
            "workspace_id",
            sa.BigInteger,
            sa.ForeignKey("workspaces.id", name="collections_workspace", ondelete="RESTRICT"),
        ),
    )
    op.execute("UPDATE collections SET workspace_id = (SELECT id FROM workspaces)")
    op.alter_column("collections", "workspace_id", nullable=False)
    op.drop_constraint("collections_name_key", "collections", type_="unique")
    op.create_unique_constraint(
        "collections_workspace_name", "collections", ["workspace_id", "name"]
    )
    op.create_table(
        "api_keys",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.BigInteger,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary, nullable=False),
        sa.Column("scopes", TEXTS, nullable=False),
        sa.Column("collections", TEXTS),
        sa.Column("principals", TEXTS),
        sa.Column("act_for_principals", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("query_per_minute", sa.Integer),
        sa.Column("ingest_per_minute", sa.Integer),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("secret_sha256", name="api_keys_secret"),
        sa.CheckConstraint(
            "scopes <@ ARRAY['read', 'write', 'admin']::text[] AND cardinality(scopes) > 0",
            name="api_keys_scopes",
        ),
    )
    op.create_index("api_keys_workspace", "api_keys", ["workspace_id"])
    op.add_column("documents", sa.Column("access", TEXTS))
    op.add_column("chunks", sa.Column("access", TEXTS))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("workspace_id", sa.BigInteger),
        sa.Column("key_id", UUID(as_uuid=True)),
        sa.Column("key_name", sa.Text),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("collection", sa.Text),
        sa.Column("document_ids", TEXTS),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    op.create_index("audit_log_workspace_at", "audit_log", ["workspace_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_column("chunks", "access")
    op.drop_column("documents", "access")
    op.drop_table("api_keys")
    op.drop_constraint("collections_workspace_name", "collections", type_="unique")
    op.create_unique_constraint("collections_name_key", "collections", ["name"])
    op.drop_column("collections", "workspace_id")
    op.drop_table("workspaces")
