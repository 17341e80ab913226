"""Inference credit from the escrow's events, applied by the event sync (exactly once).

A deposit is credited only once the node has synced its ``Deposited`` event; a withdrawal
request reserves its amount at once (``WithdrawalRequested``), so credit that can leave the
escrow after the delay is not spent meanwhile; ``Withdrawn`` books what was paid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from openledger.chain.addr import is_address, to_checksum_address
from openledger.ledger.credit.leases import trim_to_available
from openledger.store.ledger_tables import CreditRow

if TYPE_CHECKING:
    from openledger.chain.sync import ChainEventRecord, EventSync


@lru_cache(maxsize=65_536)
def checksum(account: str) -> str:
    """The EIP-55 form of an address (cached: it costs a keccak and runs on every request);
    anything that is not an address is returned as it is."""
    return to_checksum_address(account) if is_address(account) else account


def new_credit_row(account: str) -> CreditRow:
    return CreditRow(
        account=account,
        deposited=0,
        withdrawn=0,
        charged=0,
        collected=0,
        pending_withdrawal=0,
        withdrawal_ready_at=0,
    )


def credit_row(s: Session, account: str) -> CreditRow:
    """The account's credit row, added (all zero) if it has none yet."""
    account = to_checksum_address(account)
    row = s.get(CreditRow, account)
    if row is None:
        row = new_credit_row(account)
        s.add(row)
    return row


def on_deposited(s: Session, rec: ChainEventRecord) -> None:
    row = credit_row(s, rec.args["account"])
    row.deposited = row.deposited + int(rec.args["amount"])
    row.updated_at = datetime.now(UTC)


def on_withdrawal_requested(s: Session, rec: ChainEventRecord) -> None:
    row = credit_row(s, rec.args["account"])
    row.pending_withdrawal = int(rec.args["amount"])
    row.withdrawal_ready_at = int(rec.args["ready_at"])
    row.updated_at = datetime.now(UTC)
    s.flush()
    trim_to_available(s, row.account)  # credit about to leave is not leased to any node


def on_withdrawn(s: Session, rec: ChainEventRecord) -> None:
    row = credit_row(s, rec.args["account"])
    row.withdrawn = row.withdrawn + int(rec.args["amount"])
    row.pending_withdrawal = 0
    row.withdrawal_ready_at = 0
    row.updated_at = datetime.now(UTC)


_HANDLERS = {
    "Deposited": on_deposited,
    "WithdrawalRequested": on_withdrawal_requested,
    "Withdrawn": on_withdrawn,
}


def rebuild(s: Session, removed: list[ChainEventRecord]) -> None:
    """A reorganisation removed ``removed``: the synced fields of each account they touched
    are rebuilt from the escrow events that remain (what the node charged is kept), and
    leases are cut to what is still available."""
    from sqlalchemy import select

    from openledger.chain.sync import ChainEventRecord
    from openledger.store.models import ChainEvent

    accounts = {
        to_checksum_address(r.args["account"])
        for r in removed
        if r.contract == "InferenceEscrow" and r.event in _HANDLERS
    }
    for account in accounts:
        row = credit_row(s, account)
        row.deposited = row.withdrawn = row.pending_withdrawal = row.withdrawal_ready_at = 0
    if not accounts:
        return
    s.flush()
    q = (
        select(ChainEvent)
        .where(ChainEvent.contract == "InferenceEscrow", ChainEvent.event.in_(list(_HANDLERS)))
        .order_by(ChainEvent.block_number, ChainEvent.log_index)
    )
    for ev in s.scalars(q):
        if to_checksum_address(ev.args.get("account", "0x" + "0" * 40)) in accounts:
            record = ChainEventRecord(
                ev.contract, ev.event, ev.block_number, ev.log_index, ev.tx_hash, dict(ev.args)
            )
            _HANDLERS[ev.event](s, record)
    s.flush()
    for account in accounts:  # credit that is gone is not leased to any node either
        trim_to_available(s, account)


def subscribe(sync: EventSync) -> None:
    sync.subscribe("InferenceEscrow.Deposited", on_deposited)
    sync.subscribe("InferenceEscrow.WithdrawalRequested", on_withdrawal_requested)
    sync.subscribe("InferenceEscrow.Withdrawn", on_withdrawn)
    sync.on_undo(rebuild)
