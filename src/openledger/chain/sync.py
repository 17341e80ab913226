"""Event sync: apply contract events to the store exactly once, in chain order.

The cursor ``(block, log_index)`` names the last position whose events have all been
applied. Each poll reads the logs after it, runs the subscribed handlers, records the events
and moves the cursor — all in one database transaction. A crash anywhere rolls the whole
batch back, so a restart neither misses an event nor applies one twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy.orm import Session
from web3 import Web3

from openledger.chain.deploy import Contracts
from openledger.chain.head import END_OF_BLOCK
from openledger.store import repo
from openledger.store.db import WRITE_LOCK_KEY, Database


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
        confirmations: int = 0,
    ) -> None:
        self.contracts = contracts
        self.db = db
        self.name = name
        self.batch_blocks = batch_blocks
        self.confirmations = confirmations
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
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

    def cursor(self) -> tuple[int, int]:
        with self.db.session() as s:
            found = repo.get_cursor(s, self.name)
        if found is not None:
            return found
        return (self.contracts.addresses.deployed_block - 1, END_OF_BLOCK)

    def poll(self) -> list[ChainEventRecord]:
        """Apply every new event up to the confirmed head; returns what was applied."""
        head = self.contracts.client.block_number() - self.confirmations
        applied: list[ChainEventRecord] = []
        cursor = self.cursor()
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
        return applied

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
