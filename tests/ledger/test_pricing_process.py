"""The pricing process: the same bytes as pricing in the node's thread, charges it cannot
price handed back, and a child that dies replaced without losing a charge."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from openledger.attribution.types import Attribution, Share
from openledger.ledger.pricing import Beneficiary, FeeSplit, Members
from openledger.ledger.pricing_process import PricingProcess, item
from openledger.ledger.receipt_content import AttributionInput, Charge, Terms, price_charge
from openledger.ledger.receipts import GENESIS, check_receipt
from openledger.ledger.service import LedgerService
from openledger.store.ledger_tables import ReceiptRow
from tests.market import Market

SET = "0x" + "5e" * 32
MEMBERS = Members.of([
    Beneficiary(1, 1, "0x" + "a1" * 20, records=3, stake=10 * 10**18),
    Beneficiary(2, 1, "0x" + "a2" * 20, records=0, stake=30 * 10**18),
    Beneficiary(3, 2, "0x" + "a3" * 20, records=9, stake=0),
])  # fmt: skip
TERMS = Terms(chain_id=31337, operator="0x" + "0e" * 20, split=FeeSplit(1000, 2000, 2000, 5000, 4),
              treasury="0x" + "7e" * 20, set_hash=SET, model_id=7, model_name="facts-lora",
              adapter_sha256="ab" * 32, base="tiny-base", owner="0x" + "d0" * 20,
              price_in=3 * 10**15, price_out=7 * 10**15)  # fmt: skip


def charges() -> list[Charge]:
    out = []
    for i in range(40):
        attribution = None
        if i % 4:  # three in four attributed, with weights summing to less than one
            attribution = AttributionInput("gradient", "0x" + "11" * 32,
                                           {1: 0.1 * (i % 5), 3: 0.013 * i % 0.4})  # fmt: skip
        out.append(Charge("0x" + f"{i:040x}", 10 + i, 3 * i, f"0x{i:064x}", attribution,
                          "2026-11-23T18:00:00+00:00"))  # fmt: skip
    return out


@pytest.fixture
def process() -> Iterator[PricingProcess]:
    p = PricingProcess()
    yield p
    p.close()


def test_the_child_prices_byte_for_byte_as_the_node_s_thread(process: PricingProcess) -> None:
    tid = process.terms_id(TERMS)
    got = process.price([item(tid, c) for c in charges()], {SET: MEMBERS}, {tid: TERMS})
    want = [tuple(price_charge(TERMS, MEMBERS, c)) for c in charges()]
    assert got == want
    assert {p[2] for p in got} >= {10 * 3 * 10**15 // 1000}  # the first: 10 prompt tokens only
    # terms and sets are sent once: a later batch that names them only by id is priced alike
    again = process.price([item(tid, c) for c in charges()[:5]], {}, {})
    assert again == want[:5]


def test_batches_in_flight_are_answered_in_the_order_sent(process: PricingProcess) -> None:
    tid = process.terms_id(TERMS)
    cs = charges()
    first = process.send([item(tid, c) for c in cs[:25]], {SET: MEMBERS}, {tid: TERMS})
    second = process.send([item(tid, c) for c in cs[25:]], {SET: MEMBERS}, {tid: TERMS})
    assert process.receive(first) == [tuple(price_charge(TERMS, MEMBERS, c)) for c in cs[:25]]
    assert process.receive(second) == [tuple(price_charge(TERMS, MEMBERS, c)) for c in cs[25:]]


def test_batches_with_a_replaced_child_fail_and_the_next_child_prices(
    process: PricingProcess,
) -> None:
    tid = process.terms_id(TERMS)
    batch = [item(tid, c) for c in charges()[:3]]
    old = [process.send(batch, {SET: MEMBERS}, {tid: TERMS}) for _ in range(2)]
    pid = process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    want = [tuple(price_charge(TERMS, MEMBERS, c)) for c in charges()[:3]]
    for ticket in old:  # a batch the child answered before it died, or EOFError (the
        with contextlib.suppress(EOFError):  # caller prices it): never a wrong answer
            assert process.receive(ticket) == want
    ticket = process.send(batch, {SET: MEMBERS}, {tid: TERMS})
    assert process.receive(ticket) == want
    assert process.pid() not in (None, pid)


def test_a_charge_the_child_cannot_price_comes_back_as_none(process: PricingProcess) -> None:
    tid = process.terms_id(TERMS)
    wrong = AttributionInput("gradient", None, {999: 0.5})  # not a training contribution
    unknown = Charge("0x" + "99" * 20, 10, 10, "0x" + "00" * 32, wrong, "2026-11-23T18:00:00Z")
    got = process.price([item(tid, c) for c in (charges()[1], unknown, charges()[2])],
                        {SET: MEMBERS}, {tid: TERMS})  # fmt: skip
    assert got[1] is None
    assert got[0] == tuple(price_charge(TERMS, MEMBERS, charges()[1]))
    assert got[2] == tuple(price_charge(TERMS, MEMBERS, charges()[2]))


def test_a_dead_child_fails_its_batch_and_is_started_again(process: PricingProcess) -> None:
    tid = process.terms_id(TERMS)
    batch = [item(tid, c) for c in charges()[:3]]
    process.price(batch, {SET: MEMBERS}, {tid: TERMS})
    first = process.pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    with contextlib.suppress(OSError, EOFError):  # the batch sent to a dying child fails
        process.price(batch, {SET: MEMBERS}, {tid: TERMS})  # (the caller prices it) ...
    # ... and the next call starts another child, sending the terms and sets again
    got = process.price(batch, {SET: MEMBERS}, {tid: TERMS})
    assert got == [tuple(price_charge(TERMS, MEMBERS, c)) for c in charges()[:3]]
    assert process.pid() not in (None, first)


@pytest.mark.anvil
def test_charges_survive_a_pricing_process_killed_under_load(market: Market) -> None:
    """Kill the node's pricing process while 8 threads keep charging: every charge gets its
    receipt (the batch in flight is priced in the node's thread, the next batch by a new
    child), the chain is whole and the credit debited is the sum of the fees."""
    node, ledger = market.node, market.node.ledger
    erin = Attribution("gradient", {}, (Share(market.contributions["erin"],
                                               market.addr("erin"), 0.4, 1.0),))  # fmt: skip
    ledger.charge(ledger.reserve(market.user, market.model, 10, 10), 5,
                  request_hash="0x" + "00" * 32, attribution=erin)  # fmt: skip
    assert ledger._process is not None
    first = ledger._process.pid()
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
        rows = list(s.execute(select(ReceiptRow.seq, ReceiptRow.body, ReceiptRow.content_hash,
                                     ReceiptRow.hash, ReceiptRow.prev_hash)
                              .order_by(ReceiptRow.seq)))  # fmt: skip
    assert [r.seq for r in rows] == list(range(1, 202))
    prev = GENESIS
    for r in rows:
        assert check_receipt(r.seq, r.body, r.content_hash, r.hash, prev).ok
        prev = r.hash
    credit = ledger.credit(market.user)
    assert credit["held"] == "0"
    assert int(credit["charged"]) == sum(fees) + int(ledger.receipt(1)["receipt"]["fee"])
    assert ledger._process.pid() not in (None, first)  # a new child prices again


@pytest.mark.anvil
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
    r = ledger.charge(ledger.reserve(market.user, market.model, 10, 10), 5,
                      request_hash="0x" + "02" * 32, attribution=None, timeout=30)  # fmt: skip
    assert r.seq == 1 and r.prev == GENESIS
