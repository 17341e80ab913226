"""InferenceEscrow: deposits, delayed withdrawals, once-only batch collection, admin."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import DAY, OPEN, ZERO, addr, events


def deposit(system: Any, who: str, amount: int) -> None:
    system.approve(who, system.escrow.address)
    with boa.env.prank(who):
        system.escrow.deposit(amount)


def test_constructor(factories: Any, system: Any, escrow: Any) -> None:
    assert escrow.token() == system.token.address
    assert escrow.params() == system.params.address
    assert escrow.operator() == system.operator
    assert escrow.distributor() == system.distributor.address
    assert escrow.owner() == system.deployer
    t, p, o, d = system.token.address, system.params.address, system.operator, system.bob
    f = factories["InferenceEscrow"]
    for args in ((ZERO, p, o, d), (t, ZERO, o, d), (t, p, ZERO, d), (t, p, o, ZERO)):
        with boa.reverts("InferenceEscrow: zero address"):
            f.deploy(*args)


def test_deposit(escrow: Any, token: Any, system: Any) -> None:
    a = system.alice
    system.approve(a, escrow.address, 50 * OPEN)
    before = token.balanceOf(a)
    with boa.env.prank(a):
        escrow.deposit(50 * OPEN)
    (ev,) = events(escrow, "Deposited")
    assert (ev.account, ev.amount) == (a, 50 * OPEN)
    assert escrow.balanceOf(a) == 50 * OPEN
    assert escrow.totalDeposited() == 50 * OPEN
    assert token.balanceOf(a) == before - 50 * OPEN
    assert token.balanceOf(escrow.address) == 50 * OPEN


def test_deposit_reverts(escrow: Any, system: Any) -> None:
    with boa.env.prank(system.alice):
        with boa.reverts("InferenceEscrow: zero amount"):
            escrow.deposit(0)
        with boa.reverts("OpenToken: insufficient allowance"):
            escrow.deposit(OPEN)
    assert escrow.balanceOf(system.alice) == 0 and escrow.totalDeposited() == 0


def test_deposit_for(escrow: Any, token: Any, system: Any) -> None:
    """An owner funds another account's credit: the tokens are the funder's, the credit is
    the account's alone (it withdraws it; the funder cannot)."""
    owner, agent = system.alice, addr("agent")
    system.approve(owner, escrow.address, 30 * OPEN)
    before = token.balanceOf(owner)
    with boa.env.prank(owner):
        escrow.depositFor(agent, 30 * OPEN)
    deposited = events(escrow, "Deposited")
    funded = events(escrow, "DepositedFor")
    assert [(e.account, e.amount) for e in deposited] == [(agent, 30 * OPEN)]
    assert [(e.funder, e.account, e.amount) for e in funded] == [(owner, agent, 30 * OPEN)]
    assert escrow.balanceOf(agent) == 30 * OPEN and escrow.balanceOf(owner) == 0
    assert token.balanceOf(owner) == before - 30 * OPEN and token.balanceOf(agent) == 0
    assert escrow.totalDeposited() == 30 * OPEN
    assert token.balanceOf(escrow.address) == 30 * OPEN
    with boa.env.prank(owner), boa.reverts("InferenceEscrow: amount exceeds balance"):
        escrow.requestWithdrawal(OPEN)
    with boa.env.prank(agent):
        escrow.requestWithdrawal(30 * OPEN)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(agent):
        escrow.withdraw()
    assert token.balanceOf(agent) == 30 * OPEN and escrow.balanceOf(agent) == 0


def test_deposit_for_reverts(escrow: Any, token: Any, system: Any) -> None:
    owner, agent = system.alice, addr("agent")
    with boa.env.prank(owner), boa.reverts("OpenToken: insufficient allowance"):
        escrow.depositFor(agent, OPEN)
    system.approve(owner, escrow.address)
    with boa.env.prank(owner):
        with boa.reverts("InferenceEscrow: zero address"):
            escrow.depositFor(ZERO, OPEN)
        with boa.reverts("InferenceEscrow: zero amount"):
            escrow.depositFor(agent, 0)
        with boa.reverts("InferenceEscrow: below minimum deposit"):
            escrow.depositFor(agent, OPEN - 1)
    poor = addr("poor")
    system.approve(poor, escrow.address)
    with boa.env.prank(poor), boa.reverts("OpenToken: transfer amount exceeds balance"):
        escrow.depositFor(agent, OPEN)
    assert escrow.balanceOf(agent) == 0 and escrow.totalDeposited() == 0


def test_deposit_minimum(escrow: Any, token: Any, system: Any) -> None:
    """A deposit below ``params.min_deposit`` (1 OPEN by default) reverts; exactly it works."""
    a = system.alice
    assert system.params.min_deposit() == OPEN
    system.approve(a, escrow.address)
    with boa.env.prank(a):
        for amount in (1, OPEN - 1):
            with boa.reverts("InferenceEscrow: below minimum deposit"):
                escrow.deposit(amount)
        assert escrow.totalDeposited() == 0 and token.balanceOf(escrow.address) == 0
        escrow.deposit(OPEN)
    assert escrow.balanceOf(a) == OPEN and escrow.totalDeposited() == OPEN


def test_deposit_minimum_is_governable(escrow: Any, system: Any) -> None:
    """The escrow reads the floor at call time, so a governance change applies at once."""
    a = system.alice
    system.approve(a, escrow.address)
    with boa.env.prank(system.deployer):
        system.params.setParam("min_deposit", 5 * OPEN)
    with boa.env.prank(a):
        with boa.reverts("InferenceEscrow: below minimum deposit"):
            escrow.deposit(5 * OPEN - 1)
        escrow.deposit(5 * OPEN)
    with boa.env.prank(system.deployer):
        system.params.setParam("min_deposit", 0)
    with boa.env.prank(a):
        with boa.reverts("InferenceEscrow: zero amount"):  # the zero check still applies
            escrow.deposit(0)
        escrow.deposit(1)
    assert escrow.balanceOf(a) == 5 * OPEN + 1


def test_request_and_withdraw(escrow: Any, token: Any, system: Any) -> None:
    a = system.alice
    deposit(system, a, 50 * OPEN)
    with boa.env.prank(a):
        escrow.requestWithdrawal(20 * OPEN)
    (ev,) = events(escrow, "WithdrawalRequested")
    ready_at = boa.env.timestamp + DAY
    assert (ev.account, ev.amount, ev.ready_at) == (a, 20 * OPEN, ready_at)
    assert escrow.pendingWithdrawal(a) == (20 * OPEN, ready_at)
    boa.env.time_travel(seconds=DAY - 1)
    with boa.env.prank(a), boa.reverts("InferenceEscrow: withdrawal not ready"):
        escrow.withdraw()
    boa.env.time_travel(seconds=1)
    before = token.balanceOf(a)
    with boa.env.prank(a):
        escrow.withdraw()
    (ev,) = events(escrow, "Withdrawn")
    assert (ev.account, ev.amount) == (a, 20 * OPEN)
    assert token.balanceOf(a) == before + 20 * OPEN
    assert escrow.balanceOf(a) == 30 * OPEN
    assert escrow.totalWithdrawn() == 20 * OPEN
    assert escrow.pendingWithdrawal(a) == (0, 0)
    with boa.env.prank(a), boa.reverts("InferenceEscrow: no pending withdrawal"):
        escrow.withdraw()


def test_request_reverts_and_replacement(escrow: Any, system: Any) -> None:
    a = system.alice
    with boa.env.prank(a), boa.reverts("InferenceEscrow: no pending withdrawal"):
        escrow.withdraw()
    deposit(system, a, 10 * OPEN)
    with boa.env.prank(a):
        with boa.reverts("InferenceEscrow: zero amount"):
            escrow.requestWithdrawal(0)
        with boa.reverts("InferenceEscrow: amount exceeds balance"):
            escrow.requestWithdrawal(10 * OPEN + 1)
        escrow.requestWithdrawal(10 * OPEN)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(a):
        escrow.requestWithdrawal(4 * OPEN)  # replaces the first and restarts the delay
        assert escrow.pendingWithdrawal(a) == (4 * OPEN, boa.env.timestamp + DAY)
        with boa.reverts("InferenceEscrow: withdrawal not ready"):
            escrow.withdraw()


def test_withdraw_delay_is_governable(escrow: Any, system: Any) -> None:
    with boa.env.prank(system.deployer):
        system.params.setParam("escrow_withdraw_delay", 0)
    deposit(system, system.alice, OPEN)
    with boa.env.prank(system.alice):
        escrow.requestWithdrawal(OPEN)
        escrow.withdraw()
    assert escrow.balanceOf(system.alice) == 0


def test_withdraw_pays_min_of_request_and_balance(escrow: Any, token: Any, system: Any) -> None:
    a = system.alice
    deposit(system, a, 10 * OPEN)
    with boa.env.prank(a):
        escrow.requestWithdrawal(10 * OPEN)
    with boa.env.prank(system.operator):
        escrow.collect(1, 0, [a], [7 * OPEN])  # fees for inference served meanwhile
    boa.env.time_travel(seconds=DAY)
    before = token.balanceOf(a)
    with boa.env.prank(a):
        escrow.withdraw()
    assert token.balanceOf(a) == before + 3 * OPEN
    assert escrow.balanceOf(a) == 0
    assert escrow.totalWithdrawn() == 3 * OPEN


def test_withdraw_after_everything_was_collected(escrow: Any, token: Any, system: Any) -> None:
    a = system.alice
    deposit(system, a, 10 * OPEN)
    with boa.env.prank(a):
        escrow.requestWithdrawal(10 * OPEN)
    with boa.env.prank(system.operator):
        escrow.collect(1, 0, [a], [10 * OPEN])
    boa.env.time_travel(seconds=DAY)
    before = token.balanceOf(a)
    with boa.env.prank(a):
        escrow.withdraw()
    (ev,) = events(escrow, "Withdrawn")
    assert ev.amount == 0
    assert token.balanceOf(a) == before
    assert escrow.pendingWithdrawal(a) == (0, 0)


def test_collect(escrow: Any, token: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    deposit(system, a, 10 * OPEN)
    deposit(system, b, 5 * OPEN)
    dist = system.distributor.address
    assert not escrow.isCollected(3, 0)
    with boa.env.prank(system.operator):
        escrow.collect(3, 0, [a, b, a], [2 * OPEN, 5 * OPEN, 1 * OPEN])
    (ev,) = events(escrow, "Collected")
    assert (ev.epoch, ev.batch, ev.total) == (3, 0, 8 * OPEN)
    assert escrow.isCollected(3, 0)
    assert not escrow.isCollected(3, 1) and not escrow.isCollected(4, 0)
    assert escrow.balanceOf(a) == 7 * OPEN and escrow.balanceOf(b) == 0
    assert escrow.totalCollected() == 8 * OPEN
    assert token.balanceOf(dist) == 8 * OPEN
    assert token.balanceOf(escrow.address) == 7 * OPEN
    with boa.env.prank(system.operator):
        escrow.collect(3, 1, [], [])  # an empty batch is fine and marks it collected
    assert escrow.isCollected(3, 1)
    assert token.balanceOf(dist) == 8 * OPEN


def test_collect_reverts(escrow: Any, system: Any) -> None:
    a, b = system.alice, system.bob
    deposit(system, a, 10 * OPEN)
    with boa.env.prank(a), boa.reverts("InferenceEscrow: caller is not the operator"):
        escrow.collect(1, 0, [a], [1])
    with boa.env.prank(system.operator):
        with boa.reverts("InferenceEscrow: length mismatch"):
            escrow.collect(1, 0, [a], [1, 2])
        # a short balance anywhere reverts the whole batch
        with boa.reverts("InferenceEscrow: insufficient balance"):
            escrow.collect(1, 0, [a, b], [1 * OPEN, 1])
        with boa.reverts("InferenceEscrow: insufficient balance"):
            escrow.collect(1, 0, [a, a], [6 * OPEN, 5 * OPEN])
        assert escrow.balanceOf(a) == 10 * OPEN and not escrow.isCollected(1, 0)
        escrow.collect(1, 0, [a], [1 * OPEN])
        with boa.reverts("InferenceEscrow: batch already collected"):
            escrow.collect(1, 0, [a], [1 * OPEN])  # retry-safe: no double charge
    assert escrow.balanceOf(a) == 9 * OPEN


def test_collect_max_batch(escrow: Any, token: Any, system: Any) -> None:
    deposit(system, system.alice, 256 * OPEN)
    with boa.env.prank(system.operator):
        escrow.collect(9, 9, [system.alice] * 256, [OPEN] * 256)
    assert escrow.balanceOf(system.alice) == 0
    assert token.balanceOf(system.distributor.address) == 256 * OPEN


def test_set_operator_and_distributor(escrow: Any, token: Any, system: Any) -> None:
    new_op, new_dist = addr("new-operator"), addr("new-distributor")
    with boa.env.prank(system.deployer):
        escrow.setOperator(new_op)
        (ev,) = events(escrow, "OperatorChanged")
        assert (ev.old, ev.new) == (system.operator, new_op)
        escrow.setDistributor(new_dist)
        (ev,) = events(escrow, "DistributorChanged")
        assert (ev.old, ev.new) == (system.distributor.address, new_dist)
        for fn in (escrow.setOperator, escrow.setDistributor):
            with boa.reverts("InferenceEscrow: zero address"):
                fn(ZERO)
    assert escrow.operator() == new_op and escrow.distributor() == new_dist
    deposit(system, system.alice, OPEN)
    with boa.env.prank(system.operator), boa.reverts("InferenceEscrow: caller is not the operator"):
        escrow.collect(1, 0, [system.alice], [OPEN])
    with boa.env.prank(new_op):
        escrow.collect(1, 0, [system.alice], [OPEN])
    assert token.balanceOf(new_dist) == OPEN


@pytest.mark.parametrize("fn", ["setOperator", "setDistributor", "transfer_ownership"])
def test_owner_only(escrow: Any, system: Any, fn: str) -> None:
    with boa.env.prank(system.operator), boa.reverts("InferenceEscrow: caller is not the owner"):
        getattr(escrow, fn)(system.alice)


def test_transfer_ownership(escrow: Any, system: Any) -> None:
    timelock = addr("timelock")
    with boa.env.prank(system.deployer):
        with boa.reverts("InferenceEscrow: new owner is the zero address"):
            escrow.transfer_ownership(ZERO)
        escrow.transfer_ownership(timelock)
    assert escrow.owner() == timelock
    with boa.env.prank(timelock):
        escrow.setOperator(system.bob)
    assert escrow.operator() == system.bob


def test_token_returning_false(factories: Any, false_token: Any, system: Any) -> None:
    dist = addr("some-distributor")
    with boa.env.prank(addr("false-token-escrow-deployer")):  # a fresh address for it
        esc = factories["InferenceEscrow"].deploy(
            false_token.address, system.params.address, system.operator, dist
        )
    a = system.alice
    false_token.mint(a, 100 * OPEN)
    false_token.set_fail(True)
    with boa.env.prank(a), boa.reverts("InferenceEscrow: transfer failed"):
        esc.deposit(OPEN)
    with boa.env.prank(a), boa.reverts("InferenceEscrow: transfer failed"):
        esc.depositFor(system.bob, OPEN)
    assert esc.balanceOf(system.bob) == 0
    false_token.set_fail(False)
    with boa.env.prank(a):
        esc.deposit(10 * OPEN)
        esc.requestWithdrawal(5 * OPEN)
    boa.env.time_travel(seconds=DAY)
    false_token.set_fail(True)
    with boa.env.prank(a), boa.reverts("InferenceEscrow: transfer failed"):
        esc.withdraw()
    with boa.env.prank(system.operator), boa.reverts("InferenceEscrow: transfer failed"):
        esc.collect(1, 0, [a], [OPEN])
    assert esc.balanceOf(a) == 10 * OPEN and not esc.isCollected(1, 0)
