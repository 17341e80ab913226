"""The node's background settlement loop: sync chain events, close epochs when due.

Every ``interval`` seconds it applies new chain events (deposits become credit, parameter
changes reach the fee split) and, when the epoch length has passed since the last epoch and
receipts wait — or a crash left an epoch half settled — it closes the epoch. A failure is
logged and retried at the next tick; the epoch close itself is idempotent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from openledger.errors import OpenLedgerError
from openledger.ledger.settlement.epochs import EpochService

log = logging.getLogger(__name__)


class SettlementLoop:
    def __init__(
        self, sync: Callable[[], int], epochs: EpochService, *, interval: float = 2.0
    ) -> None:
        self._sync = sync
        self.epochs = epochs
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def tick(self) -> dict | None:
        """One round: sync, then close an epoch if one is due; returns the closed epoch."""
        self._sync()
        if self.epochs.due():
            return self.epochs.close()
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                closed = self.tick()
                self.last_error = None
                if closed and closed.get("epoch") is not None:
                    log.info("epoch %s settled: %s", closed["epoch"], closed.get("root"))
            except OpenLedgerError as exc:
                if exc.message != self.last_error:
                    log.warning("settlement: %s", exc.message)
                self.last_error = exc.message
            except Exception:  # keep serving; the next tick retries
                log.exception("settlement loop failed; retrying")

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="settlement", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
