"""The trust boundary: API key scopes, job owners, web sessions, sign-in nonces, prepared
wallet writes, used transaction hashes and the node's own secrets.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Hand-written to match openledger/store/auth_tables.py, api_tables.py and factory_tables.py
(tests/store/test_migrations.py checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        # keys made before scopes existed served /v1 and read their own receipts and credit
        batch.add_column(
            sa.Column("scopes", sa.String(200), nullable=False, server_default="inference,read")
        )
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("scopes", server_default=None)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(42), nullable=True))
    op.create_table(
        "node_secrets",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_node_secrets")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("dev", sa.String(32), nullable=True),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_address"), "web_sessions", ["address"])
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_siwe_nonces")),
    )
    op.create_index(op.f("ix_siwe_nonces_expires_at"), "siwe_nonces", ["expires_at"])
    op.create_table(
        "prepared_writes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("calls", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("what", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting', 'submitting', 'done')", name=op.f("ck_prepared_writes_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prepared_writes")),
    )
    op.create_index(
        op.f("ix_prepared_writes_account_created_at"), "prepared_writes", ["account", "created_at"]
    )
    op.create_table(
        "used_tx_hashes",
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("prepared_id", sa.String(32), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", name=op.f("pk_used_tx_hashes")),
    )


def downgrade() -> None:
    op.drop_table("used_tx_hashes")
    op.drop_index(op.f("ix_prepared_writes_account_created_at"), table_name="prepared_writes")
    op.drop_table("prepared_writes")
    op.drop_index(op.f("ix_siwe_nonces_expires_at"), table_name="siwe_nonces")
    op.drop_table("siwe_nonces")
    op.drop_index(op.f("ix_web_sessions_address"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("node_secrets")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
