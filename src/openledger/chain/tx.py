"""A mined transaction, as every chain write returns it.

It sits below both halves of a write, ``calls`` (build the call, check what a wallet sent)
and ``client`` (sign, send, wait for the receipt), so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from web3.types import TxReceipt


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: its hash, receipt and the gas it used."""

    tx_hash: str
    receipt: TxReceipt

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"])

    @property
    def block_number(self) -> int:
        return int(self.receipt["blockNumber"])
