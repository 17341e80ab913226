"""Tables of the Model Factory: training jobs and published models."""

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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from openledger.store.datanet_tables import Wei
from openledger.store.models import Base, utcnow

JOB_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")


class JobRow(Base):
    """A unit of long work (training, index builds) that survives restarts."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "status", "created_at"),
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    work_dir: Mapped[str] = mapped_column(String(512))
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    owner: Mapped[str | None] = mapped_column(String(42), default=None)  # None: the node's own
    # who runs it (host:pid:token of the claim) and when it last said it still does: a job
    # whose heartbeat stops is requeued by any worker (factory/jobs.py)
    worker: Mapped[str | None] = mapped_column(String(128), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class ModelRow(Base):
    """A published adapter: its files in the node home, its registration on chain."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name"), UniqueConstraint("chain_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(42))
    base: Mapped[str] = mapped_column(String(512))
    base_fingerprint: Mapped[str] = mapped_column(String(80))
    adapter_sha: Mapped[str] = mapped_column(String(64))
    adapter_dir: Mapped[str] = mapped_column(String(512))
    snapshot_roots: Mapped[list[str]] = mapped_column(JSON)
    index_hash: Mapped[str] = mapped_column(String(66))
    price_in: Mapped[int] = mapped_column(Wei)
    price_out: Mapped[int] = mapped_column(Wei)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attribution_policy: Mapped[dict[str, float] | None] = mapped_column(JSON, default=None)
