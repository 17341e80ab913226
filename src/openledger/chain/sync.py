"""Event sync: apply contract events to the store exactly once, in chain order.

The cursor ``(block, log_index)`` names the last position whose events have all been
applied. Each poll reads the logs after it, runs the subscribed handlers, records the events
and moves the cursor — all in one database transaction. A crash anywhere rolls the whole
batch back, so a restart neither misses an event nor applies one twice.

It reads up to a *confirmed* head: ``confirmations`` blocks behind the newest, or the block a
tag names (``safe``, ``finalized``; the default off the devnet, where a reorganisation never
reaches). Read closer to the head, a block the sync applied can be replaced. Each poll first
checks the block it read up to last time: the same hash means nothing before it changed. If it
is another block (or this process has not read yet), the events applied in the last
``REORG_WINDOW`` blocks are checked against their transactions' receipts; the first one that
is gone and every event after it are removed, the subscribed undo handlers rebuild what they
changed (credits: from the escrow events that remain), and the sync reads on from the last
event still there, so the new blocks' events are applied.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session
from web3 import Web3

from openledger.chain.deploy import Contracts
from openledger.chain.head import END_OF_BLOCK, confirmed_head
from openledger.store import repo
from openledger.store.db import WRITE_LOCK_KEY, Database
from openledger.store.models import ChainEvent, SyncCursor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainEventRecord:
    contract: str
    event: str
    block_number: int
    log_index: int
    tx_hash: str
    args: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)


Handler = Callable[[Session, ChainEventRecord], None]
UndoHandler = Callable[[Session, list[ChainEventRecord]], None]
REORG_WINDOW = 256  # blocks behind the cursor whose events are checked for a reorganisation


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class EventSync:
    """Polls the deployed contracts' logs into the store; handlers subscribe per event."""

    def __init__(
        self,
        contracts: Contracts,
        db: Database,
        *,
        name: str = "chain",
        batch_blocks: int = 2_000,
        confirmations: int | str = 0,
    ) -> None:
        self.contracts = contracts
        self.db = db
        self.name = name
        self.batch_blocks = batch_blocks
        self.confirmations = confirmations
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._undo: list[UndoHandler] = []
        self._anchor: tuple[int, str] | None = None  # (block, hash) read up to
        self.undone = 0  # events removed by reorganisations, since this process started
        self._decoders: dict[tuple[str, bytes], tuple[str, Any]] = {}
        for binding in contracts.all():
            for item in binding.contract.abi:
                if item.get("type") == "event":
                    topic = event_abi_to_log_topic(item)
                    ev = getattr(binding.contract.events, item["name"])()
                    self._decoders[(binding.address, bytes(topic))] = (binding.name, ev)

    def subscribe(self, event: str, handler: Handler) -> None:
        """Call ``handler(session, record)`` for each ``event`` ("Contract.Event" or "Event")."""
        self._handlers[event].append(handler)

    def on_undo(self, handler: UndoHandler) -> None:
        """Call ``handler(session, removed)`` when a reorganisation removes applied events."""
        self._undo.append(handler)

    def cursor(self) -> tuple[int, int]:
        with self.db.session() as s:
            found = repo.get_cursor(s, self.name)
        if found is not None:
            return found
        return (self.contracts.addresses.deployed_block - 1, END_OF_BLOCK)

    def poll(self) -> list[ChainEventRecord]:
        """Apply every new event up to the confirmed head; returns what was applied."""
        client = self.contracts.client
        client.ensure_checked()
        head = confirmed_head(client.url, self.confirmations, timeout=client.timeout)
        cursor = self.cursor()
        head_hash: str | None = None
        if self.confirmations != "finalized":  # a finalized block is never replaced
            cursor = self._verify(cursor)
            # the head's hash before its logs are read: if the block is replaced meanwhile,
            # the next poll sees a different hash and checks again
            head_hash = self._block_hash(head) if head >= 0 else None
        applied: list[ChainEventRecord] = []
        while cursor[0] < head or (cursor[0] == head and cursor[1] != END_OF_BLOCK):
            from_block = cursor[0] if cursor[1] != END_OF_BLOCK else cursor[0] + 1
            to_block = min(head, from_block + self.batch_blocks - 1)
            records = [r for r in self._fetch(from_block, to_block) if r.position > cursor]
            new_cursor = (to_block, END_OF_BLOCK)
            with self.db.locked_session(WRITE_LOCK_KEY) as s:
                for record in records:
                    for handler in (
                        *self._handlers.get(f"{record.contract}.{record.event}", ()),
                        *self._handlers.get(record.event, ()),
                    ):
                        handler(s, record)
                repo.record_events_and_advance(
                    s, self.name, [asdict(r) for r in records], new_cursor
                )
            applied.extend(records)
            cursor = new_cursor
        if head_hash is not None and cursor == (head, END_OF_BLOCK):
            self._anchor = (head, head_hash)
        return applied

    # -- reorganisations ---------------------------------------------------------------------
    def _block_hash(self, number: int) -> str | None:
        block = self.contracts.client.rpc("eth_getBlockByNumber", [hex(number), False])
        return str(block["hash"]) if block else None

    def _verify(self, cursor: tuple[int, int]) -> tuple[int, int]:
        """The position to read on from, after undoing what a reorganisation removed.

        Fast path: the block this process last read up to still has the hash it saw (one
        call; the chain is hash-linked, so nothing before it changed either) and is the
        cursor's. Otherwise (a new process, a different block there, or another process read
        on) each event applied in the last ``REORG_WINDOW`` blocks (after that block, if it
        is unchanged) is checked against its transaction's receipt; the first one
        that is gone and every event after it are undone, and the sync reads on from the
        last event still there, so that blocks replaced after it are read again.
        """
        start = max(cursor[0] - REORG_WINDOW, self.contracts.addresses.deployed_block)
        anchor, self._anchor = self._anchor, None
        if (
            anchor is not None
            and anchor[0] <= cursor[0]
            and self._block_hash(anchor[0]) == anchor[1]
        ):
            if anchor[0] == cursor[0]:
                self._anchor = anchor
                return cursor
            start = max(start, anchor[0] + 1)  # another process read on: check what it applied
        with self.db.session() as s:
            q = select(ChainEvent).where(ChainEvent.block_number >= start)
            recent = list(s.scalars(q.order_by(ChainEvent.block_number, ChainEvent.log_index)))
            for row in recent:
                s.expunge(row)
        receipts: dict[str, Any] = {}
        first_gone = None
        for row in recent:
            if row.tx_hash not in receipts:
                receipts[row.tx_hash] = self.contracts.client.rpc(
                    "eth_getTransactionReceipt", [row.tx_hash]
                )
            if not _still_there(receipts[row.tx_hash], row):
                first_gone = row
                break
        kept = [r for r in recent if first_gone is None or r.position < first_gone.position]
        resume = kept[-1].position if kept else (start - 1, END_OF_BLOCK)
        if first_gone is not None:  # (blocks between the last kept event and it: read again)
            if not self._undo_after(cursor, first_gone.position, resume):
                return self.cursor()  # another process moved it: checked again next poll
            return resume
        return min(cursor, resume)

    def _undo_after(
        self, cursor: tuple[int, int], fork: tuple[int, int], resume: tuple[int, int]
    ) -> bool:
        """Remove the events from ``fork`` on, run the undo handlers, set the cursor to
        ``resume`` — unless another process moved the cursor meanwhile (it will be checked
        again on the next poll)."""
        with self.db.locked_session(WRITE_LOCK_KEY) as s:
            if repo.get_cursor(s, self.name) != cursor:
                return False
            after = or_(
                ChainEvent.block_number > fork[0],
                and_(ChainEvent.block_number == fork[0], ChainEvent.log_index >= fork[1]),
            )
            rows = s.scalars(
                select(ChainEvent)
                .where(after)
                .order_by(ChainEvent.block_number, ChainEvent.log_index)
            )
            removed = [
                ChainEventRecord(
                    r.contract, r.event, r.block_number, r.log_index, r.tx_hash, dict(r.args)
                )
                for r in rows
            ]
            s.execute(delete(ChainEvent).where(after))
            s.execute(
                update(SyncCursor)
                .where(SyncCursor.name == self.name)
                .values(block_number=resume[0], log_index=resume[1])
            )
            for handler in self._undo if removed else ():
                handler(s, removed)
        self.undone += len(removed)
        log.warning(
            "chain reorganised at block %s: %s applied event(s) undone; reading again from "
            "block %s",
            fork[0],
            len(removed),
            resume[0] + (resume[1] == END_OF_BLOCK),
        )
        return True

    def _fetch(self, from_block: int, to_block: int) -> list[ChainEventRecord]:
        w3 = self.contracts.client.w3
        logs = w3.eth.get_logs(
            {
                "fromBlock": from_block,
                "toBlock": to_block,
                "address": [b.address for b in self.contracts.all()],
            }
        )
        out = []
        for log in logs:
            if not log["topics"]:
                continue
            key = (Web3.to_checksum_address(log["address"]), bytes(log["topics"][0]))
            if key not in self._decoders:
                continue
            contract, ev = self._decoders[key]
            decoded = ev.process_log(log)
            out.append(
                ChainEventRecord(
                    contract=contract,
                    event=decoded["event"],
                    block_number=int(log["blockNumber"]),
                    log_index=int(log["logIndex"]),
                    tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                    args=_jsonable(dict(decoded["args"])),
                )
            )
        out.sort(key=lambda r: r.position)
        return out


def _still_there(receipt: dict[str, Any] | None, row: ChainEvent) -> bool:
    """The event's transaction is still mined in the block, with the log, it had."""
    if not receipt or int(receipt["blockNumber"], 16) != row.block_number:
        return False
    return any(int(x["logIndex"], 16) == row.log_index for x in receipt.get("logs", []))
