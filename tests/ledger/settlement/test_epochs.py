"""Epoch settlement on the devnet: exactly once, whatever step a crash interrupts."""

from __future__ import annotations

import pytest

from openledger.attribution.types import Attribution, Share
from openledger.errors import ConflictError
from openledger.node import Node
from tests.market import Market
from tests.servers import wait_until

pytestmark = pytest.mark.anvil


class Crash(Exception):
    pass


def paid(m: Market, n: int = 3, who: str | None = None) -> list[int]:
    """``n`` paid requests by grace; erin's contribution earns 60 % of each."""
    erin = m.contributions["erin"]
    a = Attribution("gradient", {}, (Share(erin, m.addr("erin"), 0.6, 1.0),))
    fees = []
    for i in range(n):
        hold = m.node.ledger.reserve(who or m.user, m.model, 40 + i, 30)
        r = m.node.ledger.charge(hold, 10 + i, request_hash=f"0x{i:064x}", attribution=a)
        fees.append(int(r.body["fee"]))
    return fees


def fast_forward(node: Node, seconds: int = 3_601) -> None:
    node.client.rpc("evm_increaseTime", [seconds])
    node.client.rpc("evm_mine")


def chain_state(m: Market) -> tuple[int, int, int, bytes]:
    c = m.node.contracts
    return (
        c.escrow.total_collected(),
        c.token.balance_of(c.rewards.address),
        c.escrow.balance_of(m.user),
        c.rewards.epochs(1)[0],
    )


def test_close_settles_fees_and_root(market: Market) -> None:
    node = market.node
    fees = paid(market)
    before = node.contracts.token.balance_of(node.contracts.rewards.address)
    doc = node.epochs.close()
    assert doc["status"] == "settled" and doc["epoch"] == 1 and doc["receipts"] == 3
    assert int(doc["fees"]) == sum(fees) == int(doc["total"])
    c = node.contracts
    assert c.token.balance_of(c.rewards.address) - before == sum(fees)
    assert c.escrow.balance_of(market.user) == 100 * 10**18 - sum(fees)
    root, total, head, _ = c.rewards.epochs(1)
    assert "0x" + root.hex() == doc["root"] and total == sum(fees)
    assert "0x" + head.hex() == doc["receipts_head"] == node.ledger.receipt(3)["hash"]
    assert node.ledger.credit(market.user)["collected"] == str(sum(fees))
    assert node.epochs.close() == {"status": "nothing to settle", "epoch": None}


@pytest.mark.parametrize("step", ["sealed", "collected:0", "collected", "posted"])
def test_a_crash_after_any_step_settles_exactly_once(market: Market, step: str) -> None:
    node = market.node
    fees = paid(market)

    def crash(name: str) -> None:
        if name == step:
            raise Crash(name)

    node.epochs.after_step = crash
    with pytest.raises(Crash):
        node.epochs.close()
    node.epochs.after_step = None
    doc = node.epochs.close()
    assert doc["status"] == "settled" and doc["epoch"] == 1
    collected, distributor, user_escrow, root = chain_state(market)
    assert collected == sum(fees) and distributor == sum(fees)
    assert user_escrow == 100 * 10**18 - sum(fees) and "0x" + root.hex() == doc["root"]
    assert node.ledger.credit(market.user)["collected"] == str(sum(fees))
    # and again: nothing more moves
    assert node.epochs.close()["epoch"] is None
    assert chain_state(market) == (collected, distributor, user_escrow, root)
    assert node.auditor.audit(1).ok


def test_a_crash_between_sending_and_recording_a_collect_is_harmless(market: Market) -> None:
    """The collect went through on chain but the process died before recording it."""
    node = market.node
    fees = paid(market, 2)
    node.epochs.after_step = lambda name: (
        (_ for _ in ()).throw(Crash()) if name == "sealed" else None
    )
    with pytest.raises(Crash):
        node.epochs.close()
    node.epochs.after_step = None
    epoch = node.epochs.get_row(1)
    items = sorted((a, int(v)) for a, v in epoch.charges.items())
    node.contracts.escrow.collect(
        node.accounts.signer("operator"), 1, 0, [a for a, _ in items], [v for _, v in items]
    )
    assert node.epochs.close()["status"] == "settled"
    assert node.contracts.escrow.total_collected() == sum(fees)


def test_second_epoch_is_cumulative_and_waits_for_the_activation_delay(market: Market) -> None:
    node = market.node
    first = sum(paid(market, 2))
    node.epochs.close()
    second = sum(paid(market, 2))
    with pytest.raises(ConflictError, match="activation delay"):
        node.epochs.close()  # sealed and collected, the root waits
    assert node.epochs.get(2)["status"] == "collected"
    fast_forward(node)
    doc = node.epochs.close()
    assert doc["epoch"] == 2 and doc["status"] == "settled"
    assert int(doc["total"]) == first + second and int(doc["fees"]) == second
    assert node.auditor.audit(2).ok and node.auditor.audit(1).ok


def test_due_after_the_epoch_length(market: Market) -> None:
    from datetime import UTC, datetime, timedelta

    node = market.node
    assert not node.epochs.due()
    paid(market, 1)
    length = node.params.current().epoch_length
    assert not node.epochs.due()
    assert node.epochs.due(datetime.now(UTC) + timedelta(seconds=length + 1))


def test_a_withdrawal_request_brings_the_close_forward(market: Market) -> None:
    """grace owes fees and asks to withdraw: the epoch closes before her withdrawal is ready,
    so the fees leave the escrow first."""
    from datetime import UTC, datetime, timedelta

    node = market.node
    paid(market, 1)
    node.contracts.escrow.request_withdrawal(node.accounts.signer("grace"), 50 * 10**18)
    node.sync_chain()
    delay = node.params.current().escrow_withdraw_delay
    assert not node.epochs.due(datetime.now(UTC))
    assert node.epochs.due(datetime.now(UTC) + timedelta(seconds=delay // 2 + 5))


def test_the_settlement_loop_syncs_and_closes_when_due(market: Market) -> None:
    from openledger.ledger.settlement.loop import SettlementLoop

    node = market.node
    loop = SettlementLoop(node.sync_chain, node.epochs, interval=0.05)
    assert loop.tick() is None  # nothing waits
    paid(market, 2)
    node.epochs.after_step = lambda name: (
        (_ for _ in ()).throw(Crash()) if name == "sealed" else None
    )
    with pytest.raises(Crash):
        node.epochs.close()
    node.epochs.after_step = None
    loop.start()  # a half-settled epoch is due at once
    try:
        wait_until(lambda: node.epochs.get(1)["status"] == "settled", timeout=10, fail=False)
    finally:
        loop.stop()
    assert node.epochs.get(1)["status"] == "settled" and loop.last_error is None
