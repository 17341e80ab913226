"""Stateful fuzzing of governance and grants (hypothesis ``RuleBasedStateMachine``).

- votes bought (received and delegated) after a proposal's snapshot do not count;
- nobody votes twice;
- nothing executes before the timelock delay or after cancellation;
- a grant's releases never exceed its approved amount, and Grants holds what it owes;
- the treasury never pays more than it holds.
"""

from __future__ import annotations

from typing import Any

import boa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import THOROUGH

from .contract_helpers import HOUR, OPEN, System, addr
from .governance_helpers import (
    CANCELED,
    EXECUTED,
    FOR,
    SUCCEEDED,
    TL_DELAY,
    VOTING_DELAY,
    Gov,
    calldata,
    deploy_gov,
)

SETTINGS = settings(
    max_examples=100 if THOROUGH else 20,  # make test-thorough
    stateful_step_count=14,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
K = 1_000 * OPEN
N_ACTORS = 3
seconds = st.sampled_from([1, HOUR, VOTING_DELAY, 3 * 86_400, TL_DELAY, 6 * 86_400])


class GovernanceMachine(RuleBasedStateMachine):
    factories: dict[str, Any]
    system: System
    seen: dict[str, int] = {}  # what the runs exercised (checked after the run)

    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.g: Gov = deploy_gov(self.factories, self.system)
        s = self.system
        self.guardian = addr("guardian")
        with boa.env.prank(self.g.timelock.address):
            self.g.governor.setGuardian(self.guardian)
        s.fund(self.g.timelock.address, 200 * K)
        self.actors = [addr(f"voter{i}") for i in range(N_ACTORS)]
        self.history: dict[str, list[tuple[int, int]]] = {a: [] for a in self.actors}
        self.held = dict.fromkeys(self.actors, 0)
        self.proposals: dict[int, dict[str, Any]] = {}
        self.grants: dict[int, int] = {}  # id -> amount (approved ones)
        self.next_value = 1

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    def _saw(self, what: str) -> None:
        self.seen[what] = self.seen.get(what, 0) + 1

    def _votes_at(self, actor: str, t: int) -> int:
        v = 0
        for ts, votes in self.history[actor]:
            if ts <= t:
                v = votes
        return v

    @rule(i=st.integers(0, N_ACTORS - 1), amount=st.sampled_from([0, 10 * K, 30_000 * K]))
    def buy_and_delegate(self, i: int, amount: int) -> None:
        """An actor acquires OPEN (perhaps a flash purchase) and delegates to itself."""
        a = self.actors[i]
        if amount:
            self.system.fund(a, amount)
        with boa.env.prank(a):
            self.system.token.delegate(a)
        self.held[a] += amount
        self.history[a].append((boa.env.timestamp, self.held[a]))

    @rule(dt=seconds)
    def wait(self, dt: int) -> None:
        boa.env.time_travel(seconds=dt)

    @rule()
    def propose(self) -> None:
        value = self.next_value
        self.next_value += 1
        call = (self.system.params, calldata(self.system.params, "setParam", "min_stake", value))
        pid = self.g.propose([call])
        self.proposals[pid] = {"value": value, "voters": set(), "canceled": False}

    @precondition(lambda self: self.proposals)
    @rule(data=st.data(), i=st.integers(0, N_ACTORS), support=st.integers(0, 2))
    def vote(self, data: st.DataObject, i: int, support: int) -> None:
        pid = data.draw(st.sampled_from(sorted(self.proposals)))
        voter = self.g.whale if i == N_ACTORS else self.actors[i]
        p = self.g.governor.proposals(pid)
        state = self.g.governor.state(pid)
        expected = QUORUM if voter == self.g.whale else self._votes_at(voter, p.snapshot)
        before = self.g.governor.proposalVotes(pid)
        try:
            with boa.env.prank(voter):
                weight = self.g.governor.castVote(pid, support)
        except Exception:
            assert state != 1 or voter in self.proposals[pid]["voters"] or expected == 0
            return
        assert state == 1 and voter not in self.proposals[pid]["voters"]
        assert weight == expected  # votes bought after the snapshot do not count
        if voter != self.g.whale and self.held[voter] != expected:
            self._saw("late votes ignored")
        self.proposals[pid]["voters"].add(voter)
        after = self.g.governor.proposalVotes(pid)
        assert sum(after) - sum(before) == weight

    @precondition(lambda self: self.proposals)
    @rule(data=st.data(), early=st.booleans())
    def drive(self, data: st.DataObject, early: bool) -> None:
        """Move a proposal one step along its path (so that runs reach execution), trying
        to execute a queued one before its delay when ``early``."""
        pid = data.draw(st.sampled_from(sorted(self.proposals)))
        g = self.g.governor
        for _ in range(4):  # pending → active → voted → succeeded → queued
            state, p = g.state(pid), g.proposals(pid)
            if state == 0:
                boa.env.time_travel(seconds=p.snapshot - boa.env.timestamp + 1)
            elif state == 1 and self.g.whale not in self.proposals[pid]["voters"]:
                with boa.env.prank(self.g.whale):
                    g.castVote(pid, FOR)
                self.proposals[pid]["voters"].add(self.g.whale)
            elif state == 1:
                boa.env.time_travel(seconds=p.deadline - boa.env.timestamp + 1)
            elif state == SUCCEEDED:
                g.queue(pid)
        state, p = g.state(pid), g.proposals(pid)
        if state != 5:
            return
        wait = p.eta - boa.env.timestamp - (1 if early else 0)
        if wait > 0:
            boa.env.time_travel(seconds=wait)
        try:
            g.execute(pid)
        except Exception:
            assert boa.env.timestamp < p.eta
            self._saw("early execution refused")
            return
        assert boa.env.timestamp >= p.eta and not self.proposals[pid]["canceled"]
        assert self.system.params.min_stake() == self.proposals[pid]["value"]
        self.proposals[pid]["executed"] = True
        self._saw("executed")

    @precondition(lambda self: self.proposals)
    @rule(data=st.data())
    def queue(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.proposals)))
        ok = self.g.governor.state(pid) == SUCCEEDED
        try:
            self.g.governor.queue(pid)
        except Exception:
            assert not ok
            return
        assert ok

    @precondition(lambda self: self.proposals)
    @rule(data=st.data())
    def execute(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.proposals)))
        p = self.g.governor.proposals(pid)
        try:
            self.g.governor.execute(pid)
        except Exception:
            return
        # executed: it was queued, not cancelled, and its delay had passed
        assert not self.proposals[pid]["canceled"]
        assert p.eta != 0 and boa.env.timestamp >= p.eta
        assert self.system.params.min_stake() == self.proposals[pid]["value"]
        self.proposals[pid]["executed"] = True
        self._saw("executed")

    @precondition(lambda self: self.proposals)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.proposals)))
        try:
            with boa.env.prank(self.guardian):
                self.g.governor.cancel(pid)
        except Exception:
            assert self.g.governor.state(pid) in (CANCELED, EXECUTED)
            return
        self.proposals[pid]["canceled"] = True

    @rule(i=st.integers(0, N_ACTORS - 1), tier=st.integers(0, 2), parts=st.integers(1, 4))
    def apply_and_approve(self, i: int, tier: int, parts: int) -> None:
        low, high = self.g.grants.tierBounds(tier)
        amount = (low + high) // 2
        ms = [amount // parts] * (parts - 1)
        ms.append(amount - sum(ms))
        with boa.env.prank(self.actors[i]):
            gid = self.g.grants.apply(tier, amount, ms, "ipfs://x")
        tl = self.g.timelock.address
        holds = self.system.token.balanceOf(tl)
        with boa.env.prank(tl):
            self.system.token.approve(self.g.grants.address, amount)
            try:
                self.g.grants.approve(gid)
            except Exception:
                assert amount > holds  # refused only when the treasury lacks it
                return
        assert amount <= holds
        self.grants[gid] = amount

    @precondition(lambda self: self.grants)
    @rule(data=st.data(), cancel=st.booleans())
    def release_or_cancel(self, data: st.DataObject, cancel: bool) -> None:
        gid = data.draw(st.sampled_from(sorted(self.grants)))
        with boa.env.prank(self.g.timelock.address):
            try:
                (self.g.grants.cancel if cancel else self.g.grants.release)(gid)
            except Exception:
                assert self.g.grants.grants(gid).status in (2, 3)
                return
        self._saw("cancelled" if cancel else "released")

    @invariant()
    def grants_hold_what_they_owe(self) -> None:
        owed = 0
        for gid, amount in self.grants.items():
            g = self.g.grants.grants(gid)
            assert g.released <= amount == g.amount
            if g.status == 1:
                owed += amount - g.released
        assert self.g.grants.escrowed() == owed
        assert self.system.token.balanceOf(self.g.grants.address) == owed

    @invariant()
    def cancelled_never_executes(self) -> None:
        for pid, p in self.proposals.items():
            state = self.g.governor.state(pid)
            if p["canceled"]:
                assert state == CANCELED and not p.get("executed")


QUORUM = 40_000_000 * OPEN


def test_governance_invariants(factories: dict[str, Any], system: System) -> None:
    GovernanceMachine.factories = factories
    GovernanceMachine.system = system
    GovernanceMachine.seen = {}
    run_state_machine_as_test(GovernanceMachine, settings=SETTINGS)
    seen = GovernanceMachine.seen
    assert seen.get("executed") and seen.get("early execution refused"), seen
    assert seen.get("released") or seen.get("cancelled"), seen


def test_flash_votes_after_the_snapshot_do_not_count(
    factories: dict[str, Any], system: System
) -> None:
    g = deploy_gov(factories, system)
    pid = g.propose([(system.params, calldata(system.params, "setParam", "min_stake", 1))])
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    flash = addr("flash")
    system.fund(flash, 500_000_000 * OPEN)  # half the supply, bought after the snapshot
    with boa.env.prank(flash):
        system.token.delegate(flash)
        try:
            g.governor.castVote(pid, FOR)
            raised = False
        except Exception:
            raised = True
    assert raised and g.governor.proposalVotes(pid) == (0, 0, 0)
