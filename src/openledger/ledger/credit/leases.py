"""Credit leases: the database-level part of the credit hold, shared by every node.

A paid request is held against its account's credit before any compute. Doing that with one
database write per request would cap a node at a few hundred requests a second, and doing
it in process memory alone lets two nodes on one database spend the same credit. So a node
*leases* credit from the database under its write lock (``BEGIN IMMEDIATE`` on SQLite, the
ledger's advisory lock on PostgreSQL): ``ledger_credits.held`` grows by the lease and a
``ledger_credit_leases`` row records which node holds how much. The node then holds requests
against its lease in memory; the writer that commits their receipts consumes the lease in
the same transaction as the debit. ``available − held`` is what no node holds, so nodes never
hold more than there is between them.

A lease not in use for ``IDLE_RETURN_S`` goes back to the account (so another node can use
it); a node renews its leases every ``RENEW_S``, and a lease not renewed for ``LEASE_TTL_S``
(its node died) is returned by whichever node notices first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.ledger_tables import CreditLeaseRow, CreditRow

LEASE_TTL_S = 30.0
RENEW_S = 1.0
IDLE_RETURN_S = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class CreditLeases:
    """The database side of one node's leases."""

    def __init__(self, db: Database, node: str, *, ttl_s: float = LEASE_TTL_S) -> None:
        self.db = db
        self.node = node
        self.ttl_s = ttl_s

    def take(self, account: str, need: int) -> tuple[int, int]:
        """Lease at least ``need`` wei of ``account``'s unheld credit, and up to half of it:
        ``(leased, unheld before)``; ``leased`` is 0 when less than ``need`` is unheld."""
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            row = s.get(CreditRow, account)
            if row is None:
                return 0, 0
            unheld = row.available - row.held
            if unheld < need or need <= 0:
                return 0, max(unheld, 0)
            amount = max(need, unheld // 2)
            row.held = row.held + amount
            lease = s.get(CreditLeaseRow, (account, self.node))
            if lease is None:
                s.add(
                    CreditLeaseRow(
                        account=account, node=self.node, amount=amount, renewed_at=_now()
                    )
                )
            else:
                lease.amount, lease.renewed_at = lease.amount + amount, _now()
            return amount, unheld

    def give_back(self, amounts: dict[str, int]) -> dict[str, int]:
        """Return unused lease (wei by account); what each lease holds afterwards."""
        left: dict[str, int] = {}
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            for account, amount in amounts.items():
                lease = s.get(CreditLeaseRow, (account, self.node))
                if lease is None:
                    left[account] = 0
                    continue
                amount = min(amount, lease.amount)
                row = s.get(CreditRow, account)
                if row is not None:
                    row.held = max(row.held - amount, 0)
                lease.amount -= amount
                left[account] = lease.amount
                if lease.amount == 0:
                    s.delete(lease)
        return left

    def renew(self) -> dict[str, int]:
        """Mark this node's leases as alive; returns what each holds in the database (a lease
        cut by a withdrawal, or expired while this node was stalled, is smaller there)."""
        with self.db.session() as s:
            s.execute(
                delete(CreditLeaseRow).where(
                    CreditLeaseRow.node == self.node, CreditLeaseRow.amount == 0
                )
            )
            s.execute(
                update(CreditLeaseRow)
                .where(CreditLeaseRow.node == self.node)
                .values(renewed_at=_now())
            )
            rows = s.execute(
                select(CreditLeaseRow.account, CreditLeaseRow.amount).where(
                    CreditLeaseRow.node == self.node
                )
            ).all()
        return {a: int(v) for a, v in rows}

    def expire(self) -> int:
        """Return every lease (any node's) not renewed for ``ttl_s``; how many."""
        cutoff = _now() - timedelta(seconds=self.ttl_s)
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            stale = list(
                s.scalars(select(CreditLeaseRow).where(CreditLeaseRow.renewed_at < cutoff))
            )
            for lease in stale:
                row = s.get(CreditRow, lease.account)
                if row is not None:
                    row.held = max(row.held - lease.amount, 0)
                s.delete(lease)
        return len(stale)


def trim_to_available(s, account: str) -> None:
    """After a withdrawal request: cut the leases of ``account`` (largest first) until no
    more is held than is available, so credit about to leave the escrow is not spent. Nodes
    see their smaller leases at their next renewal."""
    row = s.get(CreditRow, account)
    if row is None or row.held <= max(row.available, 0):
        return
    excess = row.held - max(row.available, 0)
    found = s.scalars(select(CreditLeaseRow).where(CreditLeaseRow.account == account)).all()
    for lease in sorted(found, key=lambda x: x.amount, reverse=True):  # wei are text: sort here
        cut = min(excess, lease.amount)
        lease.amount -= cut
        row.held -= cut
        excess -= cut
        if lease.amount == 0:
            s.delete(lease)
        if excess == 0:
            break


def release_node(db: Database, node: str) -> None:
    """Return every lease of ``node`` (its ledger is closing)."""
    with db.locked_session(WRITE_LOCK_KEY) as s:
        for lease in s.scalars(select(CreditLeaseRow).where(CreditLeaseRow.node == node)).all():
            row = s.get(CreditRow, lease.account)
            if row is not None:
                row.held = max(row.held - lease.amount, 0)
        s.execute(delete(CreditLeaseRow).where(CreditLeaseRow.node == node))


__all__ = ["CreditLeases", "release_node", "trim_to_available"]
