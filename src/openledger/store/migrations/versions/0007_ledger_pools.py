"""Ledger pools and receipt links: the stakers' and unattributed parts pooled per
beneficiary set until the epoch's seal divides them; receipts linked by content hash and
signed once per committed group (the head signature replaces the per-receipt one).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Hand-written to match openledger/store/ledger_tables.py (tests/store/test_migrations.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEI = sa.String(78)
EMPTY = sa.text("''")


def upgrade() -> None:
    with op.batch_alter_table("ledger_receipts") as batch:
        batch.add_column(
            sa.Column("content_hash", sa.String(66), server_default=EMPTY, nullable=False)
        )
        batch.add_column(
            sa.Column("head_signature", sa.String(132), server_default=EMPTY, nullable=False)
        )
        batch.drop_column("signature")
    op.create_table(
        "ledger_pools",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_seq", sa.Integer(), nullable=False),
        sa.Column("set_hash", sa.String(66), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("amount", WEI, nullable=False),
        sa.ForeignKeyConstraint(
            ["receipt_seq"],
            ["ledger_receipts.seq"],
            name=op.f("fk_ledger_pools_receipt_seq_ledger_receipts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_pools")),
    )
    op.create_index(op.f("ix_ledger_pools_receipt_seq"), "ledger_pools", ["receipt_seq"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_pools_receipt_seq"), table_name="ledger_pools")
    op.drop_table("ledger_pools")
    with op.batch_alter_table("ledger_receipts") as batch:
        batch.add_column(
            sa.Column("signature", sa.String(132), server_default=EMPTY, nullable=False)
        )
        batch.drop_column("head_signature")
        batch.drop_column("content_hash")
