"""Ledger: inference credit, signed receipts, earnings, beneficiary sets and epochs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Hand-written to match openledger/store/ledger_tables.py (tests/store/test_migrations.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
WEI = sa.String(78)


def upgrade() -> None:
    op.create_table(
        "ledger_credits",
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("deposited", WEI, nullable=False),
        sa.Column("withdrawn", WEI, nullable=False),
        sa.Column("charged", WEI, nullable=False),
        sa.Column("collected", WEI, nullable=False),
        sa.Column("pending_withdrawal", WEI, nullable=False),
        sa.Column("withdrawal_ready_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_ledger_credits")),
    )
    op.create_table(
        "ledger_receipts",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("prev_hash", sa.String(66), nullable=False),
        sa.Column("signature", sa.String(132), nullable=False),
        sa.Column("payer", sa.String(42), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("fee", WEI, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_receipts")),
        sa.UniqueConstraint("hash", name=op.f("uq_ledger_receipts_hash")),
    )
    op.create_index(op.f("ix_ledger_receipts_epoch"), "ledger_receipts", ["epoch"])
    op.create_index(op.f("ix_ledger_receipts_payer"), "ledger_receipts", ["payer"])
    op.create_table(
        "ledger_earnings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_seq", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("amount", WEI, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("datanet_id", sa.Integer(), nullable=True),
        sa.Column("contribution_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["receipt_seq"],
            ["ledger_receipts.seq"],
            name=op.f("fk_ledger_earnings_receipt_seq_ledger_receipts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_earnings")),
    )
    op.create_index(op.f("ix_ledger_earnings_account"), "ledger_earnings", ["account"])
    op.create_index(op.f("ix_ledger_earnings_receipt_seq"), "ledger_earnings", ["receipt_seq"])
    op.create_table(
        "ledger_beneficiary_sets",
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_ledger_beneficiary_sets")),
    )
    op.create_table(
        "ledger_epochs",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("receipt_count", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(66), nullable=False),
        sa.Column("fees", WEI, nullable=False),
        sa.Column("root", sa.String(66), nullable=False),
        sa.Column("total", WEI, nullable=False),
        sa.Column("leaves", sa.JSON(), nullable=False),
        sa.Column("charges", sa.JSON(), nullable=False),
        sa.Column("collect_txs", sa.JSON(), nullable=False),
        sa.Column("post_tx", sa.String(66), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("settled_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_ledger_epochs")),
    )


def downgrade() -> None:
    op.drop_table("ledger_epochs")
    op.drop_table("ledger_beneficiary_sets")
    op.drop_index(op.f("ix_ledger_earnings_receipt_seq"), table_name="ledger_earnings")
    op.drop_index(op.f("ix_ledger_earnings_account"), table_name="ledger_earnings")
    op.drop_table("ledger_earnings")
    op.drop_index(op.f("ix_ledger_receipts_payer"), table_name="ledger_receipts")
    op.drop_index(op.f("ix_ledger_receipts_epoch"), table_name="ledger_receipts")
    op.drop_table("ledger_receipts")
    op.drop_table("ledger_credits")
