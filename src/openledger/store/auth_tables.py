"""Tables of the trust boundary: web sessions, sign-in nonces, prepared wallet writes, the
transaction hashes already reported for one, and the node's own secrets.

They live in the database (not in a process's memory) so that a restart forgets nothing
and several API processes on one PostgreSQL agree on every one of them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openledger.store.models import Base, utcnow


class NodeSecretRow(Base):
    """A secret the node made for itself (e.g. the receipt-id key), hex, made once."""

    __tablename__ = "node_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSessionRow(Base):
    """A signed-in web session. Only the sha256 of its cookie is stored; logout revokes it."""

    __tablename__ = "web_sessions"
    __table_args__ = (UniqueConstraint("token_hash"), Index(None, "address"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(42))
    dev: Mapped[str | None] = mapped_column(String(32), default=None)
    chain_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class SiweNonceRow(Base):
    """A sign-in nonce the node issued: it works once (``used_at``) and until ``expires_at``."""

    __tablename__ = "siwe_nonces"
    __table_args__ = (Index(None, "expires_at"),)

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class PreparedWriteRow(Base):
    """A write prepared for an account whose key the node does not hold: the calls its
    wallet sends, and (``kind``, ``args``, ``payload``) from which the node records the
    off-chain side once they are mined."""

    __tablename__ = "prepared_writes"
    __table_args__ = (
        Index(None, "account", "created_at"),
        CheckConstraint("state IN ('waiting', 'submitting', 'done')", name="state"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(42))
    kind: Mapped[str] = mapped_column(String(64))
    args: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    calls: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    what: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class UsedTxRow(Base):
    """A transaction hash already reported for a prepared write (never accepted twice)."""

    __tablename__ = "used_tx_hashes"

    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    prepared_id: Mapped[str] = mapped_column(String(32))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)
