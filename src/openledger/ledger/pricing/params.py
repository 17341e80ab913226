"""The protocol parameters the ledger prices with, read from ProtocolParams and cached.

Reading every value costs a dozen calls, so the cache keeps a snapshot and asks only for
``version()`` (which the contract bumps on every change) once per ``ttl`` seconds; when the
version moved, it reads the whole snapshot again. ``invalidate()`` forces the next read
(the event sync calls it when it sees a parameter change).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openledger.ledger.pricing.fees import FeeSplit

if TYPE_CHECKING:
    from openledger.chain.bindings import Params


@dataclass(frozen=True)
class LedgerParams:
    split: FeeSplit
    treasury: str
    epoch_length: int
    min_deposit: int
    escrow_withdraw_delay: int
    root_activation_delay: int

    @classmethod
    def from_snapshot(cls, p: Params) -> LedgerParams:
        return cls(
            split=FeeSplit(
                p.platform_bps,
                p.owner_bps,
                p.stakers_bps,
                p.contributors_bps,
                version=p.version,
                compute_bps=p.compute_share_bps,
            ),
            treasury=p.treasury,
            epoch_length=p.epoch_length,
            min_deposit=p.min_deposit,
            escrow_withdraw_delay=p.escrow_withdraw_delay,
            root_activation_delay=p.root_activation_delay,
        )


class ParamsCache:
    """Thread-safe cached view of ProtocolParams (see the module docstring)."""

    def __init__(
        self,
        version: Callable[[], int],
        snapshot: Callable[[], Params],
        *,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._version = version
        self._snapshot = snapshot
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: LedgerParams | None = None
        self._checked_at = -float("inf")

    def current(self) -> LedgerParams:
        with self._lock:
            now = self._clock()
            if self._value is None:
                self._value = LedgerParams.from_snapshot(self._snapshot())
                self._checked_at = now
            elif now - self._checked_at >= self.ttl:
                if self._version() != self._value.split.version:
                    self._value = LedgerParams.from_snapshot(self._snapshot())
                self._checked_at = now
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None
