"""Datanet access fees: the accesses paid on chain and what each pays to whom (issue 22).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Hand-written to match openledger/store/ledger_tables.py (tests/store/test_migrations.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEI = sa.String(78)


def upgrade() -> None:
    op.create_table(
        "ledger_access",
        sa.Column("access_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("payer", sa.String(42), nullable=False),
        sa.Column("datanet_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("amount", WEI, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(66), nullable=False),
        sa.Column("signature", sa.String(132), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("used_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("access_id", name=op.f("pk_ledger_access")),
    )
    op.create_index(op.f("ix_ledger_access_epoch"), "ledger_access", ["epoch"])
    op.create_index(
        op.f("ix_ledger_access_payer_datanet_id_version"),
        "ledger_access",
        ["payer", "datanet_id", "version"],
    )
    op.create_table(
        "ledger_access_earnings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("access_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("amount", WEI, nullable=False),
        sa.Column("datanet_id", sa.BigInteger(), nullable=True),
        sa.Column("contribution_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["access_id"],
            ["ledger_access.access_id"],
            name=op.f("fk_ledger_access_earnings_access_id_ledger_access"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_access_earnings")),
    )
    op.create_index(
        op.f("ix_ledger_access_earnings_account"), "ledger_access_earnings", ["account"]
    )
    op.create_index(
        op.f("ix_ledger_access_earnings_access_id"), "ledger_access_earnings", ["access_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_access_earnings_access_id"), table_name="ledger_access_earnings")
    op.drop_index(op.f("ix_ledger_access_earnings_account"), table_name="ledger_access_earnings")
    op.drop_table("ledger_access_earnings")
    op.drop_index(op.f("ix_ledger_access_payer_datanet_id_version"), table_name="ledger_access")
    op.drop_index(op.f("ix_ledger_access_epoch"), table_name="ledger_access")
    op.drop_table("ledger_access")
