"""Several nodes on one database: job claims with heartbeats, credit leases.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Hand-written to match openledger/store/factory_tables.py and ledger_tables.py
(tests/store/test_migrations.py checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEI = sa.String(78)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("ledger_credits") as batch:
        batch.add_column(sa.Column("held", WEI, server_default=sa.text("'0'"), nullable=False))
    op.create_table(
        "ledger_credit_leases",
        sa.Column("account", sa.String(42), primary_key=True),
        sa.Column("node", sa.String(128), primary_key=True),
        sa.Column("amount", WEI, nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_credit_leases")
    with op.batch_alter_table("ledger_credits") as batch:
        batch.drop_column("held")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
        batch.drop_column("heartbeat_at")
        batch.drop_column("worker")
