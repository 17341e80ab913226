"""Foundation tables: sync cursors, chain events, accounts, node metadata.

Revision ID: 0001
Revises:
Create Date: 2025-11-23

Hand-written to match openledger/store/models.py (tests/store/test_migrations.py checks
that the two agree on every backend). Names are final (``op.f``): the target metadata's
naming convention would otherwise be applied to them a second time. Later stages add
their tables in new revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_cursors")),
    )

    op.create_table(
        "chain_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("contract", sa.String(100), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_events")),
        sa.UniqueConstraint(
            "block_number", "log_index", name=op.f("uq_chain_events_block_number_log_index")
        ),
    )
    op.create_index(op.f("ix_chain_events_contract_event"), "chain_events", ["contract", "event"])
    op.create_index(op.f("ix_chain_events_tx_hash"), "chain_events", ["tx_hash"])

    op.create_table(
        "accounts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_accounts")),
        sa.UniqueConstraint("address", name=op.f("uq_accounts_address")),
        sa.CheckConstraint("kind IN ('operator', 'dev', 'user')", name=op.f("ck_accounts_kind")),
    )

    op.create_table(
        "node_meta",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_node_meta")),
    )


def downgrade() -> None:
    op.drop_table("node_meta")
    op.drop_table("accounts")
    op.drop_index(op.f("ix_chain_events_tx_hash"), table_name="chain_events")
    op.drop_index(op.f("ix_chain_events_contract_event"), table_name="chain_events")
    op.drop_table("chain_events")
    op.drop_table("sync_cursors")
