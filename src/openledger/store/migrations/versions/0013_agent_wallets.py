"""Agent wallets: the address of each agent's own account (issue 22, part 1c).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Hand-written to match openledger/store/agent_tables.py (tests/store/test_migrations.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("wallet", sa.String(42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("wallet")
