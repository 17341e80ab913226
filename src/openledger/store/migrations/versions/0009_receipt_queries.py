"""The tokens each paid inference attributed, by the query hash its receipt commits to.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Hand-written to match openledger/store/ledger_tables.py (tests/store/test_migrations.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_receipt_queries",
        sa.Column("query_hash", sa.String(66), primary_key=True),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("completion", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_receipt_queries")
