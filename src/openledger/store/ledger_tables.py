"""Tables of the ledger: inference credit, receipts, earnings and settlement epochs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from openledger.store.datanet_tables import Wei
from openledger.store.models import Base, utcnow

EPOCH_STATUSES: tuple[str, ...] = ("sealed", "collected", "posted", "settled")


class CreditRow(Base):
    """An account's inference credit as synced from the escrow's events, less what the
    node has charged. ``available = deposited - withdrawn - charged - pending_withdrawal``:
    a withdrawal request reserves its amount at once, so credit that may leave the escrow
    is never spent."""

    __tablename__ = "ledger_credits"

    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    deposited: Mapped[int] = mapped_column(Wei, default=0)
    withdrawn: Mapped[int] = mapped_column(Wei, default=0)
    charged: Mapped[int] = mapped_column(Wei, default=0)
    collected: Mapped[int] = mapped_column(Wei, default=0)
    pending_withdrawal: Mapped[int] = mapped_column(Wei, default=0)
    withdrawal_ready_at: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # credit leased to the nodes serving paid requests (the sum of their CreditLeaseRow)
    held: Mapped[int] = mapped_column(Wei, default=0, server_default=text("'0'"))

    @property
    def available(self) -> int:
        return self.deposited - self.withdrawn - self.charged - self.pending_withdrawal


class CreditLeaseRow(Base):
    """Credit of ``account`` one node holds for the paid requests it serves: taken from the
    account's available credit under the database's write lock, so nodes on one database
    never hold more than there is between them (ledger/credit/leases.py). A lease not renewed for
    ``LEASE_TTL_S`` (its node died) goes back to the account."""

    __tablename__ = "ledger_credit_leases"

    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    node: Mapped[str] = mapped_column(String(128), primary_key=True)
    amount: Mapped[int] = mapped_column(Wei)
    renewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReceiptRow(Base):
    """One receipt: ``body`` is the canonical JSON that ``content_hash`` is taken of;
    ``hash`` is its link in the chain (``ledger.receipts``); ``head_signature``, set on the
    last receipt of each committed group, is the operator's signature of that hash."""

    __tablename__ = "ledger_receipts"
    __table_args__ = (Index(None, "epoch"), Index(None, "payer"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(66))
    content_hash: Mapped[str] = mapped_column(String(66), server_default=text("''"))
    head_signature: Mapped[str] = mapped_column(String(132), server_default=text("''"))
    payer: Mapped[str] = mapped_column(String(42))
    model_id: Mapped[int] = mapped_column(Integer)
    fee: Mapped[int] = mapped_column(Wei)
    epoch: Mapped[int | None] = mapped_column(Integer, default=None)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EarningRow(Base):
    """One payout of one receipt (denormalised from the receipt for the rewards views)."""

    __tablename__ = "ledger_earnings"
    __table_args__ = (Index(None, "account"), Index(None, "receipt_seq"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_seq: Mapped[int] = mapped_column(ForeignKey("ledger_receipts.seq"))
    account: Mapped[str] = mapped_column(String(42))
    role: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Wei)
    model_id: Mapped[int] = mapped_column(Integer)
    datanet_id: Mapped[int | None] = mapped_column(Integer, default=None)
    contribution_id: Mapped[int | None] = mapped_column(Integer, default=None)


class PoolRow(Base):
    """Pooled wei (the stakers' part, the unattributed rest) of a group of receipts, per
    beneficiary set and role; the epoch's seal divides the pools of its receipts over each
    set and records the shares as earnings of the epoch's last receipt."""

    __tablename__ = "ledger_pools"
    __table_args__ = (Index(None, "receipt_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receipt_seq: Mapped[int] = mapped_column(ForeignKey("ledger_receipts.seq"))
    set_hash: Mapped[str] = mapped_column(String(66))
    role: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Wei)


class BeneficiarySetRow(Base):
    """The training contributions (stake, records) a receipt's split used, by content hash,
    so an audit recomputes the split from exactly what the ledger saw."""

    __tablename__ = "ledger_beneficiary_sets"

    hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    model_id: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EpochRow(Base):
    """A settlement epoch: sealed (receipts assigned, tree built) → collected (fees moved
    to the distributor) → posted (root on chain) → settled."""

    __tablename__ = "ledger_epochs"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    receipt_count: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(66))
    fees: Mapped[int] = mapped_column(Wei)
    root: Mapped[str] = mapped_column(String(66))
    total: Mapped[int] = mapped_column(Wei)
    leaves: Mapped[dict[str, str]] = mapped_column(JSON)  # account → cumulative wei
    charges: Mapped[dict[str, str]] = mapped_column(JSON)  # payer → wei of this epoch
    collect_txs: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_tx: Mapped[str] = mapped_column(String(66), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(default=None)

    def doc(self) -> dict[str, Any]:
        return {
            "epoch": self.number,
            "status": self.status,
            "receipts": self.receipt_count,
            "first_receipt": self.first_seq,
            "last_receipt": self.last_seq,
            "receipts_head": self.head_hash,
            "fees": str(self.fees),
            "root": self.root,
            "total": str(self.total),
            "accounts": len(self.leaves),
            "collect_txs": list(self.collect_txs or []),
            "post_tx": self.post_tx,
            "created_at": self.created_at.isoformat(),
            "settled_at": self.settled_at.isoformat() if self.settled_at else None,
        }


class ReceiptQueryRow(Base):
    """The exact tokens a paid inference attributed (prompt as served, completion as
    generated), by ``query_hash`` — the sha256 its receipt commits to — so the attribution
    can be recomputed later (``openledger verify receipt``, ``audit --attribution``). Only
    the payer and the operator may read it (docs/attribution-verify.md)."""

    __tablename__ = "ledger_receipt_queries"

    query_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    prompt: Mapped[list[int]] = mapped_column(JSON)
    completion: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


ACCESS_KINDS: tuple[str, ...] = ("export", "train")  # DatanetRegistry.payAccess kinds 0, 1


class AccessRow(Base):
    """A datanet access fee paid on chain (``DatanetRegistry.AccessPaid``), recorded once
    by its access id: ``body`` is the canonical JSON of its split (``ledger.access``),
    ``content_hash`` its keccak256, ``signature`` the operator's EIP-191 signature of that
    hash, made when the epoch that pays it out is sealed. A training access is spent by
    one job (``used_by``); an export access lets its payer export that snapshot."""

    __tablename__ = "ledger_access"
    __table_args__ = (Index(None, "epoch"), Index(None, "payer", "datanet_id", "version"))

    access_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    payer: Mapped[str] = mapped_column(String(42))
    datanet_id: Mapped[int] = mapped_column(BigInteger)  # the chain's datanet id
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(Wei)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(66))
    signature: Mapped[str] = mapped_column(String(132), default="")
    epoch: Mapped[int | None] = mapped_column(Integer, default=None)
    used_by: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessEarningRow(Base):
    """One payout of an access fee: the platform and owner parts when it is recorded, the
    stakers' and contributors' shares of its pools when its epoch is sealed (recorded on
    the epoch's last access, as the receipts' pool shares are on its last receipt)."""

    __tablename__ = "ledger_access_earnings"
    __table_args__ = (Index(None, "account"), Index(None, "access_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    access_id: Mapped[int] = mapped_column(ForeignKey("ledger_access.access_id"))
    account: Mapped[str] = mapped_column(String(42))
    role: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Wei)
    datanet_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    contribution_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
