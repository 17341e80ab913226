"""Tables of the Datanets stage: datanets, contributions, records, reviews, snapshots.

The chain is the authority on stakes and decisions; these rows mirror it (with the chain's
ids) and hold what the chain does not: names, record contents, previews, review reasons.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from openledger.store.models import Base, utcnow

CONTRIBUTION_STATUSES: tuple[str, ...] = ("pending", "approved", "rejected")


class Wei(TypeDecorator[int]):
    """A uint256 amount, stored exactly as decimal text (SQLite has no 256-bit integers)."""

    impl = String(78)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"a wei amount must be a non-negative int, got {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class DatanetRow(Base):
    __tablename__ = "datanets"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("chain_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(42))
    validators: Mapped[list[str]] = mapped_column(JSON)
    quorum: Mapped[int] = mapped_column(Integer)
    min_stake: Mapped[int] = mapped_column(Wei)
    metadata_uri: Mapped[str] = mapped_column(String(256))
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContributionRow(Base):
    __tablename__ = "contributions"
    __table_args__ = (
        UniqueConstraint("chain_id"),
        Index(None, "datanet_id", "status"),
        Index(None, "contributor", "created_at"),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # NULL only inside the transaction that registers it on chain, never committed so
    chain_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    datanet_id: Mapped[int] = mapped_column(ForeignKey("datanets.id"))
    contributor: Mapped[str] = mapped_column(String(42))
    root: Mapped[str] = mapped_column(String(66))
    record_count: Mapped[int] = mapped_column(Integer)
    stake: Mapped[int] = mapped_column(Wei)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    rejections: Mapped[int] = mapped_column(Integer, default=0)
    slashed: Mapped[int] = mapped_column(Wei, default=0)
    unlock_at: Mapped[int] = mapped_column(BigInteger, default=0)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    file_count: Mapped[int] = mapped_column(Integer)
    manifest_sha: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(132))
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


class RecordRow(Base):
    """One normalised record. ``dedup_key`` is its sha256 while it counts for duplicate
    checks and NULL once its contribution is rejected (NULLs never collide)."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("datanet_id", "dedup_key"),
        Index(None, "contribution_id", "position"),
        Index(None, "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    datanet_id: Mapped[int] = mapped_column(ForeignKey("datanets.id"))
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"))
    position: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(64), default=None)
    kind: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)  # canonical JSON of the record
    source: Mapped[str] = mapped_column(String(256))
    location: Mapped[str] = mapped_column(String(64))
    char_len: Mapped[int] = mapped_column(Integer)


class ReviewRow(Base):
    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("contribution_id", "validator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"))
    validator: Mapped[str] = mapped_column(String(42))
    approve: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SnapshotRow(Base):
    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("datanet_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    datanet_id: Mapped[int] = mapped_column(ForeignKey("datanets.id"))
    version: Mapped[int] = mapped_column(Integer)
    root: Mapped[str] = mapped_column(String(66))
    record_count: Mapped[int] = mapped_column(Integer)
    contribution_ids: Mapped[list[int]] = mapped_column(JSON)
    parquet_sha: Mapped[str] = mapped_column(String(64))
    manifest_sha: Mapped[str] = mapped_column(String(64))
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
