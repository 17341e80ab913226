"""Agents: registrations in AgentRegistry and their configurations (issue 22, part 1).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Hand-written to match openledger/store/agent_tables.py (tests/store/test_migrations.py
checks that they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEI = sa.String(78)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("config_hash", sa.String(66), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("price", WEI, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("callee_agents", sa.JSON(), nullable=False),
        sa.Column("callee_models", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("chain_id", name=op.f("uq_agents_chain_id")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )


def downgrade() -> None:
    op.drop_table("agents")
