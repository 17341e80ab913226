"""Drop the accounts and node_meta tables: nothing reads or writes them (issue 21 item 4).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

The node's named accounts live in its keystore (chain/accounts.py), not in the database,
and nothing in the node stores facts in node_meta. The downgrade recreates both, empty, as
0001 made them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("node_meta")
    op.drop_table("accounts")


def downgrade() -> None:
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
