"""Attribution policy of a published model (gradient, spans, rag or a weighted mix).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

NULL means the default policy (gradient only), so models published before keep working.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("models", sa.Column("attribution_policy", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("attribution_policy")
