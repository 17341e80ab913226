"""Datanets: datanets, contributions, records, reviews, snapshots.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Hand-written to match openledger/store/datanet_tables.py (tests/store/test_migrations.py
checks that they agree). Amounts in wei are decimal text (String(78)).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datanets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("validators", sa.JSON(), nullable=False),
        sa.Column("quorum", sa.Integer(), nullable=False),
        sa.Column("min_stake", sa.String(78), nullable=False),
        sa.Column("metadata_uri", sa.String(256), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datanets")),
        sa.UniqueConstraint("name", name=op.f("uq_datanets_name")),
        sa.UniqueConstraint("chain_id", name=op.f("uq_datanets_chain_id")),
    )
    op.create_table(
        "contributions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("datanet_id", sa.Integer(), nullable=False),
        sa.Column("contributor", sa.String(42), nullable=False),
        sa.Column("root", sa.String(66), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("stake", sa.String(78), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approvals", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.Integer(), nullable=False),
        sa.Column("slashed", sa.String(78), nullable=False),
        sa.Column("unlock_at", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("manifest_sha", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(132), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["datanet_id"], ["datanets.id"], name=op.f("fk_contributions_datanet_id_datanets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contributions")),
        sa.UniqueConstraint("chain_id", name=op.f("uq_contributions_chain_id")),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_contributions_status")
        ),
    )
    op.create_index(
        op.f("ix_contributions_datanet_id_status"), "contributions", ["datanet_id", "status"]
    )
    op.create_index(
        op.f("ix_contributions_contributor_created_at"),
        "contributions",
        ["contributor", "created_at"],
    )
    op.create_table(
        "records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("datanet_id", sa.Integer(), nullable=False),
        sa.Column("contribution_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("char_len", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contribution_id"],
            ["contributions.id"],
            name=op.f("fk_records_contribution_id_contributions"),
        ),
        sa.ForeignKeyConstraint(
            ["datanet_id"], ["datanets.id"], name=op.f("fk_records_datanet_id_datanets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint(
            "datanet_id", "dedup_key", name=op.f("uq_records_datanet_id_dedup_key")
        ),
    )
    op.create_index(
        op.f("ix_records_contribution_id_position"), "records", ["contribution_id", "position"]
    )
    op.create_index(op.f("ix_records_sha256"), "records", ["sha256"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("contribution_id", sa.Integer(), nullable=False),
        sa.Column("validator", sa.String(42), nullable=False),
        sa.Column("approve", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["contribution_id"],
            ["contributions.id"],
            name=op.f("fk_reviews_contribution_id_contributions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint(
            "contribution_id", "validator", name=op.f("uq_reviews_contribution_id_validator")
        ),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("datanet_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(66), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("contribution_ids", sa.JSON(), nullable=False),
        sa.Column("parquet_sha", sa.String(64), nullable=False),
        sa.Column("manifest_sha", sa.String(64), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["datanet_id"], ["datanets.id"], name=op.f("fk_snapshots_datanet_id_datanets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("datanet_id", "version", name=op.f("uq_snapshots_datanet_id_version")),
    )


def downgrade() -> None:
    op.drop_table("snapshots")
    op.drop_table("reviews")
    op.drop_index(op.f("ix_records_sha256"), table_name="records")
    op.drop_index(op.f("ix_records_contribution_id_position"), table_name="records")
    op.drop_table("records")
    op.drop_index(op.f("ix_contributions_contributor_created_at"), table_name="contributions")
    op.drop_index(op.f("ix_contributions_datanet_id_status"), table_name="contributions")
    op.drop_table("contributions")
    op.drop_table("datanets")
