"""The pricing process: the same bytes as pricing in the node's thread, batches answered in
order, charges it cannot price handed back, and a child that dies replaced."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from openledger.ledger.pricing.fees import Beneficiary, FeeSplit, Members
from openledger.ledger.pricing.process import PricingProcess, item
from openledger.ledger.receipts.content import AttributionInput, Charge, Terms, price_charge

SET = "0x" + "5e" * 32
MEMBERS = Members.of(
    [
        Beneficiary(1, 1, "0x" + "a1" * 20, records=3, stake=10 * 10**18),
        Beneficiary(2, 1, "0x" + "a2" * 20, records=0, stake=30 * 10**18),
        Beneficiary(3, 2, "0x" + "a3" * 20, records=9, stake=0),
    ]
)
TERMS = Terms(
    chain_id=31337,
    operator="0x" + "0e" * 20,
    split=FeeSplit(1000, 2000, 2000, 5000, 4),
    treasury="0x" + "7e" * 20,
    set_hash=SET,
    model_id=7,
    model_name="facts-lora",
    adapter_sha256="ab" * 32,
    base="tiny-base",
    owner="0x" + "d0" * 20,
    price_in=3 * 10**15,
    price_out=7 * 10**15,
)


def charges() -> list[Charge]:
    out = []
    for i in range(40):
        attribution = None
        if i % 4:  # three in four attributed, with weights summing to less than one
            attribution = AttributionInput(
                "gradient", "0x" + "11" * 32, {1: 0.1 * (i % 5), 3: 0.013 * i % 0.4}
            )
        out.append(
            Charge(
                "0x" + f"{i:040x}",
                10 + i,
                3 * i,
                f"0x{i:064x}",
                attribution,
                "2026-11-23T18:00:00+00:00",
            )
        )
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
    got = process.price(
        [item(tid, c) for c in (charges()[1], unknown, charges()[2])], {SET: MEMBERS}, {tid: TERMS}
    )
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
