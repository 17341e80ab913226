"""The ledger's pricing stage through LedgerService on the devnet: a pricing process killed
under load loses no charge, and a bug in the stage answers its requests instead of leaving
them waiting."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from sqlalchemy import select

from openledger.attribution.types import Attribution, Share
from openledger.ledger.receipts.canonical import GENESIS, check_receipt
from openledger.ledger.receipts.writer import ReceiptWriter as LedgerService
from openledger.store.ledger_tables import ReceiptRow
from tests.market import Market

pytestmark = pytest.mark.anvil


def test_charges_survive_a_pricing_process_killed_under_load(market: Market) -> None:
    """Kill the node's pricing process while 8 threads keep charging: every charge gets its
    receipt (the batch in flight is priced in the node's thread, the next batch by a new
    child), the chain is whole and the credit debited is the sum of the fees."""
    node, ledger = market.node, market.node.ledger
    erin = Attribution(
        "gradient", {}, (Share(market.contributions["erin"], market.addr("erin"), 0.4, 1.0),)
    )
    ledger.charge(
        ledger.reserve(market.user, market.model, 10, 10),
        5,
        request_hash="0x" + "00" * 32,
        attribution=erin,
    )
    assert ledger._pricer.process is not None
    first = ledger._pricer.process.pid()
    assert first is not None
    fees: list[int] = []
    lock = threading.Lock()
    killed = threading.Event()

    def pay(t: int) -> None:
        for i in range(25):
            hold = ledger.reserve(market.user, market.model, 20, 20)
            r = ledger.charge(hold, 7, request_hash=f"0x{t * 100 + i:064x}", attribution=erin)
            with lock:
                fees.append(int(r.body["fee"]))
                if len(fees) == 60 and not killed.is_set():
                    os.kill(first, signal.SIGKILL)
                    killed.set()

    threads = [threading.Thread(target=pay, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert killed.is_set() and len(fees) == 200
    with node.db.session() as s:
        rows = list(
            s.execute(
                select(
                    ReceiptRow.seq,
                    ReceiptRow.body,
                    ReceiptRow.content_hash,
                    ReceiptRow.hash,
                    ReceiptRow.prev_hash,
                ).order_by(ReceiptRow.seq)
            )
        )
    assert [r.seq for r in rows] == list(range(1, 202))
    prev = GENESIS
    for r in rows:
        assert check_receipt(r.seq, r.body, r.content_hash, r.hash, prev).ok
        prev = r.hash
    credit = ledger.credit(market.user)
    assert credit["held"] == "0"
    assert int(credit["charged"]) == sum(fees) + int(ledger.receipt(1)["receipt"]["fee"])
    assert ledger._pricer.process.pid() not in (None, first)  # a new child prices again


def test_a_bug_while_taking_in_a_batch_refuses_it_instead_of_hanging(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in the ledger's receiver thread answers the batch's requests with
    it (their holds released) and the next request is charged as usual."""
    ledger = market.node.ledger
    real = LedgerService._job
    calls = {"n": 0}

    def broken(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(LedgerService, "_job", staticmethod(broken))
    hold = ledger.reserve(market.user, market.model, 10, 10)
    with pytest.raises(RuntimeError, match="a bug"):
        ledger.charge(hold, 5, request_hash="0x" + "01" * 32, attribution=None, timeout=30)
    assert ledger.credit(market.user)["held"] == "0"
    r = ledger.charge(
        ledger.reserve(market.user, market.model, 10, 10),
        5,
        request_hash="0x" + "02" * 32,
        attribution=None,
        timeout=30,
    )
    assert r.seq == 1 and r.prev == GENESIS
