"""Stateful fuzzing (hypothesis ``RuleBasedStateMachine``) of the protocol invariants.

- total supply is constant (and votes always equal the delegated balances);
- no account is paid more than its cumulative entitlement, and nothing is claimed twice;
- the escrow never pays out more than was deposited;
- a slashed stake is never withdrawable.

Each machine keeps a Python model of what the contracts should hold, checks the cheap
global invariants after every step and reconciles every account with the chain in an
``audit`` rule (a step like any other). Each example runs against the session deployment
inside its own ``boa.env.anchor()``; runs are derandomized, so the suite is deterministic.
"""

from __future__ import annotations

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

from .contract_helpers import (
    DAY,
    HOUR,
    OPEN,
    START_TIME,
    SUPPLY,
    ZERO,
    MerkleTree,
    System,
    addr,
    h,
)

SETTINGS = settings(
    max_examples=400 if THOROUGH else 50,  # make test-thorough
    stateful_step_count=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

actor = st.integers(min_value=0, max_value=3)
seconds = st.sampled_from([1, 59, HOUR - 1, HOUR, DAY, 7 * DAY])


class _Anchored(RuleBasedStateMachine):
    """Runs every example inside ``boa.env.anchor()`` so examples do not leak state."""

    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        # boa renders every storage slot it has ever seen written into the message of
        # each revert (even an expected one); start each example with empty debug traces
        # so that this cost does not grow over the run. Restored in teardown.
        env = boa.env
        self._traces = (env.sha3_trace, env.sstore_trace)
        env.sha3_trace, env.sstore_trace = {}, {}

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)
        boa.env.sha3_trace, boa.env.sstore_trace = self._traces


# ---- OpenToken ------------------------------------------------------------------------------


class TokenMachine(_Anchored):
    """Transfers, allowances and delegation never change the supply; votes track balances."""

    def __init__(self, system: System) -> None:
        super().__init__()
        self.token = system.token
        self.actors = [system.alice, system.bob, system.carol, addr("dave")]
        self.others = SUPPLY - sum(self.token.balanceOf(a) for a in self.actors)
        self.balance = {a: self.token.balanceOf(a) for a in self.actors}
        self.delegate_of = dict.fromkeys(self.actors, ZERO)
        # timestamp -> votes per account at the end of that timestamp
        self.history: dict[int, dict[str, int]] = {}
        self.t0 = boa.env.timestamp

    def _votes(self) -> dict[str, int]:
        return {
            d: sum(b for a, b in self.balance.items() if self.delegate_of[a] == d)
            for d in self.actors
        }

    def _moved(self, src: str, dst: str, amount: int) -> None:
        self.balance[src] -= amount
        self.balance[dst] += amount
        self.history[boa.env.timestamp] = self._votes()

    @rule(i=actor, j=actor, pct=st.integers(min_value=0, max_value=120))
    def transfer(self, i: int, j: int, pct: int) -> None:
        src, dst = self.actors[i], self.actors[j]
        amount = self.balance[src] * pct // 100
        with boa.env.prank(src):
            if amount > self.balance[src]:
                with boa.reverts("OpenToken: transfer amount exceeds balance"):
                    self.token.transfer(dst, amount)
                return
            self.token.transfer(dst, amount)
        self._moved(src, dst, amount)

    @rule(i=actor, j=actor, k=actor, pct=st.integers(min_value=0, max_value=100))
    def transfer_from(self, i: int, j: int, k: int, pct: int) -> None:
        owner, spender, dst = self.actors[i], self.actors[j], self.actors[k]
        amount = self.balance[owner] * pct // 100
        with boa.env.prank(owner):
            self.token.approve(spender, amount)
        with boa.env.prank(spender):
            self.token.transferFrom(owner, dst, amount)
            with boa.reverts("OpenToken: insufficient allowance"):
                self.token.transferFrom(owner, dst, 1)  # the allowance is used up
        self._moved(owner, dst, amount)

    @rule(i=actor, j=st.integers(min_value=-1, max_value=3))
    def delegate(self, i: int, j: int) -> None:
        who = self.actors[i]
        to = ZERO if j < 0 else self.actors[j]
        with boa.env.prank(who):
            self.token.delegate(to)
        self.delegate_of[who] = to
        self.history[boa.env.timestamp] = self._votes()

    @rule(dt=seconds)
    def wait(self, dt: int) -> None:
        boa.env.time_travel(seconds=dt)

    @rule(i=actor)
    def audit(self, i: int) -> None:
        assert sum(self.token.balanceOf(a) for a in self.actors) + self.others == SUPPLY
        for a in self.actors:
            assert self.token.balanceOf(a) == self.balance[a]
            assert self.token.delegates(a) == self.delegate_of[a]
        now = boa.env.timestamp
        # the one and only mint happened at deployment (START_TIME)
        minted = SUPPLY if now - 1 >= START_TIME else 0
        assert self.token.getPastTotalSupply(now - 1) == minted
        # past votes of one account at every recorded past timestamp (binary search)
        a = self.actors[i]
        for t in sorted(self.history):
            if t < now:
                assert self.token.getPastVotes(a, t) == self.history[t][a]
        assert self.token.getPastVotes(a, self.t0 - 1) == 0

    @invariant()
    def supply_constant_and_votes_follow_balances(self) -> None:
        assert self.token.totalSupply() == SUPPLY
        assert sum(self.balance.values()) + self.others == SUPPLY
        for d, votes in self._votes().items():
            assert self.token.getVotes(d) == votes


def test_token_invariants(system: System) -> None:
    run_state_machine_as_test(lambda: TokenMachine(system), settings=SETTINGS)


# ---- RewardDistributor ----------------------------------------------------------------------


class DistributorMachine(_Anchored):
    """Claims never exceed the cumulative entitlement and never pay twice."""

    def __init__(self, system: System) -> None:
        super().__init__()
        self.system = system
        self.dist = system.distributor
        self.token = system.token
        self.actors = [system.alice, system.bob, system.carol, addr("dave")]
        self.start_balances = {a: self.token.balanceOf(a) for a in self.actors}
        system.fund(self.dist.address, 2_000 * OPEN)
        self.funded = 2_000 * OPEN
        self.epoch = 0
        self.latest = dict.fromkeys(self.actors, 0)  # latest posted cumulative
        self.active: MerkleTree | None = None
        self.pending: MerkleTree | None = None
        self.pending_ready_at = 0
        self.pending_epoch = 0
        self.paid = dict.fromkeys(self.actors, 0)

    def _in_force(self) -> MerkleTree | None:
        """The tree claims are checked against now (a ready pending root counts)."""
        if self.pending is not None and boa.env.timestamp >= self.pending_ready_at:
            self.active, self.pending = self.pending, None
        return self.active

    @rule(amount=st.integers(min_value=0, max_value=1_000 * OPEN))
    def fund(self, amount: int) -> None:
        self.system.fund(self.dist.address, amount)
        self.funded += amount

    @rule(
        raises=st.lists(st.integers(min_value=0, max_value=300 * OPEN), min_size=4, max_size=4),
        overstate=st.booleans(),
    )
    def post_root(self, raises: list[int], overstate: bool) -> None:
        self._in_force()
        entries = {a: self.latest[a] + r for a, r in zip(self.actors, raises, strict=True)}
        tree = MerkleTree(entries)
        total = tree.total + (1 if overstate else 0)
        self.epoch += 1
        with boa.env.prank(self.system.operator):
            if self.pending is not None:
                with boa.reverts("RewardDistributor: root pending"):
                    self.dist.postRoot(self.epoch, tree.root, total, h("head"))
            elif total > self.funded:
                with boa.reverts("RewardDistributor: total exceeds funds"):
                    self.dist.postRoot(self.epoch, tree.root, total, h("head"))
            else:
                self.dist.postRoot(self.epoch, tree.root, total, h("head"))
                self.pending = tree
                self.pending_ready_at = boa.env.timestamp + HOUR
                self.pending_epoch = self.epoch
                self.latest = entries

    @rule(raises=st.lists(st.integers(min_value=0, max_value=300 * OPEN), min_size=4, max_size=4))
    def post_root_and_wait(self, raises: list[int]) -> None:
        """The normal flow: post, then let the activation delay pass."""
        self.post_root(raises, overstate=False)
        boa.env.time_travel(seconds=HOUR)

    @precondition(lambda self: self.pending is not None)
    @rule()
    def disable_pending(self) -> None:
        self._in_force()
        if self.pending is None:
            return
        with boa.env.prank(self.system.deployer):
            self.dist.disableRoot(self.pending_epoch)
        self.pending = None
        self.latest = dict(self.active.entries) if self.active else dict.fromkeys(self.actors, 0)

    @rule(dt=seconds)
    def wait(self, dt: int) -> None:
        boa.env.time_travel(seconds=dt)

    @rule(i=actor)
    def claim(self, i: int) -> None:
        tree = self._in_force()
        a = self.actors[i]
        if tree is None:
            with boa.reverts("RewardDistributor: no active root"):
                self.dist.claim(a, 0, [])
            return
        cumulative, proof = tree.entries[a], tree.proof(a)
        if cumulative <= self.paid[a]:
            with boa.reverts("RewardDistributor: nothing to claim"):
                self.dist.claim(a, cumulative, proof)
            return
        before = self.token.balanceOf(a)
        self.dist.claim(a, cumulative, proof)
        assert self.token.balanceOf(a) - before == cumulative - self.paid[a]
        self.paid[a] = cumulative
        assert self.dist.claimed(a) == cumulative
        # the same claim again pays nothing
        with boa.reverts("RewardDistributor: nothing to claim"):
            self.dist.claim(a, cumulative, proof)

    @rule(i=actor, extra=st.integers(min_value=1, max_value=10**24))
    def claim_more_than_entitled(self, i: int, extra: int) -> None:
        tree = self._in_force()
        if tree is None:
            return
        a = self.actors[i]
        with boa.reverts("RewardDistributor: invalid proof"):
            self.dist.claim(a, tree.entries[a] + extra, tree.proof(a))

    @rule()
    def audit(self) -> None:
        tree = self._in_force()
        for a in self.actors:
            claimed = self.dist.claimed(a)
            assert claimed == self.paid[a]
            assert claimed <= (tree.entries[a] if tree else 0)
            assert self.token.balanceOf(a) == self.start_balances[a] + claimed

    @invariant()
    def books_balance(self) -> None:
        total = sum(self.paid.values())
        tree = self._in_force()
        for a, paid in self.paid.items():
            assert paid <= (tree.entries[a] if tree else 0)
        assert self.dist.totalClaimed() == total <= self.funded
        assert self.token.balanceOf(self.dist.address) == self.funded - total


def test_distributor_invariants(system: System) -> None:
    run_state_machine_as_test(lambda: DistributorMachine(system), settings=SETTINGS)


# ---- InferenceEscrow ------------------------------------------------------------------------


class EscrowMachine(_Anchored):
    """Deposits, delayed withdrawals and batch collection never pay out more than deposited."""

    def __init__(self, system: System) -> None:
        super().__init__()
        self.system = system
        self.escrow = system.escrow
        self.token = system.token
        self.actors = [system.alice, system.bob, system.carol, addr("dave")]
        system.fund(self.actors[3], 1_000_000 * OPEN)
        for a in self.actors:
            system.approve(a, self.escrow.address)
        self.balance = dict.fromkeys(self.actors, 0)
        self.request: dict[str, tuple[int, int]] = {}
        self.collected: set[tuple[int, int]] = set()
        self.deposited = self.withdrawn = self.fees = 0
        for i in range(len(self.actors)):
            self.deposit(i, 300 * OPEN)
        self.dist_start = self.token.balanceOf(system.distributor.address)

    @rule(i=actor, amount=st.integers(min_value=0, max_value=500 * OPEN))
    def deposit(self, i: int, amount: int) -> None:
        a = self.actors[i]
        with boa.env.prank(a):
            if amount == 0:
                with boa.reverts("InferenceEscrow: zero amount"):
                    self.escrow.deposit(amount)
                return
            if amount < OPEN:  # the default params.min_deposit
                with boa.reverts("InferenceEscrow: below minimum deposit"):
                    self.escrow.deposit(amount)
                return
            self.escrow.deposit(amount)
        self.balance[a] += amount
        self.deposited += amount

    @rule(i=actor, pct=st.integers(min_value=0, max_value=150))
    def request_withdrawal(self, i: int, pct: int) -> None:
        a = self.actors[i]
        amount = self.balance[a] * pct // 100 if self.balance[a] else pct
        with boa.env.prank(a):
            if amount == 0:
                with boa.reverts("InferenceEscrow: zero amount"):
                    self.escrow.requestWithdrawal(amount)
            elif amount > self.balance[a]:
                with boa.reverts("InferenceEscrow: amount exceeds balance"):
                    self.escrow.requestWithdrawal(amount)
            else:
                self.escrow.requestWithdrawal(amount)
                self.request[a] = (amount, boa.env.timestamp + DAY)

    @rule(i=actor)
    def withdraw(self, i: int) -> None:
        a = self.actors[i]
        with boa.env.prank(a):
            if a not in self.request:
                with boa.reverts("InferenceEscrow: no pending withdrawal"):
                    self.escrow.withdraw()
                return
            amount, ready_at = self.request[a]
            if boa.env.timestamp < ready_at:
                with boa.reverts("InferenceEscrow: withdrawal not ready"):
                    self.escrow.withdraw()
                return
            before = self.token.balanceOf(a)
            self.escrow.withdraw()
        paid = min(amount, self.balance[a])
        assert self.token.balanceOf(a) - before == paid
        self.balance[a] -= paid
        self.withdrawn += paid
        del self.request[a]

    @precondition(lambda self: self.request)
    @rule(i=actor)
    def withdraw_when_ready(self, i: int) -> None:
        """The normal flow: wait out the delay of a pending request, then withdraw."""
        a = sorted(self.request)[i % len(self.request)]
        boa.env.time_travel(seconds=max(0, self.request[a][1] - boa.env.timestamp))
        self.withdraw(self.actors.index(a))

    @rule(
        epoch=st.integers(min_value=0, max_value=3),
        batch=st.integers(min_value=0, max_value=2),
        charges=st.lists(
            st.tuples(actor, st.integers(min_value=0, max_value=200 * OPEN)), max_size=5
        ),
    )
    def collect(self, epoch: int, batch: int, charges: list[tuple[int, int]]) -> None:
        accounts = [self.actors[i] for i, _ in charges]
        amounts = [amt for _, amt in charges]
        due: dict[str, int] = {}
        short = False
        for a, amt in zip(accounts, amounts, strict=True):
            due[a] = due.get(a, 0) + amt
            short = short or due[a] > self.balance[a]
        with boa.env.prank(self.system.operator):
            if (epoch, batch) in self.collected:
                with boa.reverts("InferenceEscrow: batch already collected"):
                    self.escrow.collect(epoch, batch, accounts, amounts)
            elif short:
                with boa.reverts("InferenceEscrow: insufficient balance"):
                    self.escrow.collect(epoch, batch, accounts, amounts)
            else:
                self.escrow.collect(epoch, batch, accounts, amounts)
                self.collected.add((epoch, batch))
                for a, amt in due.items():
                    self.balance[a] -= amt
                self.fees += sum(amounts)

    @rule(dt=seconds)
    def wait(self, dt: int) -> None:
        boa.env.time_travel(seconds=dt)

    @rule()
    def audit(self) -> None:
        for a in self.actors:
            assert self.escrow.balanceOf(a) == self.balance[a]
            assert self.escrow.pendingWithdrawal(a) == self.request.get(a, (0, 0))
        dist = self.token.balanceOf(self.system.distributor.address)
        assert dist - self.dist_start == self.fees

    @invariant()
    def never_pays_out_more_than_deposited(self) -> None:
        deposited = self.escrow.totalDeposited()
        withdrawn = self.escrow.totalWithdrawn()
        collected = self.escrow.totalCollected()
        assert (deposited, withdrawn, collected) == (self.deposited, self.withdrawn, self.fees)
        assert withdrawn + collected <= deposited
        held = deposited - withdrawn - collected
        assert self.token.balanceOf(self.escrow.address) == held == sum(self.balance.values())


def test_escrow_invariants(system: System) -> None:
    run_state_machine_as_test(lambda: EscrowMachine(system), settings=SETTINGS)


# ---- DatanetRegistry ------------------------------------------------------------------------


class StakeMachine(_Anchored):
    """The slashed part of a stake goes to the treasury once and is never withdrawable."""

    QUORUM = 2

    def __init__(self, system: System) -> None:
        super().__init__()
        self.system = system
        self.reg = system.datanets
        self.token = system.token
        self.contributors = [system.alice, system.bob, system.carol]
        for a in self.contributors:
            system.approve(a, self.reg.address)
        with boa.env.prank(system.carol):
            self.datanet = self.reg.createDatanet("fuzz", system.validators, self.QUORUM, 0)
        self.treasury_start = self.token.balanceOf(system.treasury)
        self.start = {a: self.token.balanceOf(a) for a in self.contributors}
        self.slash_bps = 5000
        # the model: one dict per contribution, keyed by id
        self.c: dict[int, dict] = {}
        for i in range(len(self.contributors)):
            self.contribute(i, 10 + 45 * i)

    @rule(i=st.integers(min_value=0, max_value=2), stake=st.integers(min_value=10, max_value=500))
    def contribute(self, i: int, stake: int) -> None:
        who = self.contributors[i]
        amount = stake * OPEN + i
        with boa.env.prank(who):
            cid = self.reg.contribute(self.datanet, h(f"b{len(self.c)}"), 1, amount)
        self.c[cid] = {
            "who": who,
            "stake": amount,
            "status": 0,
            "reviewers": set(),
            "yes": 0,
            "no": 0,
            "unlock_at": 0,
            "slashed": 0,
            "withdrawn": False,
        }

    def _pick(self, k: int) -> int:
        return sorted(self.c)[k % len(self.c)]

    @precondition(lambda self: self.c)
    @rule(k=st.integers(min_value=0, max_value=50), v=st.integers(0, 2), approve=st.booleans())
    def review(self, k: int, v: int, approve: bool) -> None:
        cid = self._pick(k)
        m = self.c[cid]
        validator = self.system.validators[v]
        with boa.env.prank(validator):
            if m["status"] != 0:
                with boa.reverts("DatanetRegistry: not pending"):
                    self.reg.review(cid, approve)
                return
            if validator in m["reviewers"]:
                with boa.reverts("DatanetRegistry: already reviewed"):
                    self.reg.review(cid, approve)
                return
            self.reg.review(cid, approve)
        m["reviewers"].add(validator)
        if approve:
            m["yes"] += 1
            if m["yes"] == self.QUORUM:
                m["status"], m["unlock_at"] = 1, boa.env.timestamp + 7 * DAY
        else:
            m["no"] += 1
            if m["no"] == self.QUORUM:
                m["status"], m["unlock_at"] = 2, boa.env.timestamp
                m["slashed"] = m["stake"] * self.slash_bps // 10_000

    @precondition(lambda self: any(m["status"] == 0 for m in self.c.values()))
    @rule(k=st.integers(min_value=0, max_value=50), approve=st.booleans())
    def decide(self, k: int, approve: bool) -> None:
        """The remaining validators of a pending contribution all vote the same way."""
        pending = sorted(cid for cid, m in self.c.items() if m["status"] == 0)
        cid = pending[k % len(pending)]
        index = sorted(self.c).index(cid)
        for v, validator in enumerate(self.system.validators):
            if self.c[cid]["status"] == 0 and validator not in self.c[cid]["reviewers"]:
                self.review(index, v, approve)

    @precondition(lambda self: self.c)
    @rule(k=st.integers(min_value=0, max_value=50))
    def withdraw(self, k: int) -> None:
        cid = self._pick(k)
        m = self.c[cid]
        with boa.env.prank(m["who"]):
            if m["status"] == 0:
                with boa.reverts("DatanetRegistry: not decided"):
                    self.reg.withdrawStake(cid)
            elif m["withdrawn"]:
                with boa.reverts("DatanetRegistry: already withdrawn"):
                    self.reg.withdrawStake(cid)
            elif boa.env.timestamp < m["unlock_at"]:
                with boa.reverts("DatanetRegistry: stake locked"):
                    self.reg.withdrawStake(cid)
            elif m["stake"] == m["slashed"]:
                with boa.reverts("DatanetRegistry: nothing to withdraw"):
                    self.reg.withdrawStake(cid)
            else:
                before = self.token.balanceOf(m["who"])
                self.reg.withdrawStake(cid)
                assert self.token.balanceOf(m["who"]) - before == m["stake"] - m["slashed"]
                m["withdrawn"] = True

    @precondition(lambda self: any(m["status"] != 0 for m in self.c.values()))
    @rule(k=st.integers(min_value=0, max_value=50))
    def withdraw_when_unlocked(self, k: int) -> None:
        """The normal flow: wait until a decided stake unlocks, then withdraw it."""
        decided = sorted(cid for cid, m in self.c.items() if m["status"] != 0)
        cid = decided[k % len(decided)]
        boa.env.time_travel(seconds=max(0, self.c[cid]["unlock_at"] - boa.env.timestamp))
        self.withdraw(sorted(self.c).index(cid))

    @precondition(lambda self: self.c)
    @rule(k=st.integers(min_value=0, max_value=50))
    def stranger_cannot_withdraw(self, k: int) -> None:
        with (
            boa.env.prank(self.system.validators[0]),
            boa.reverts("DatanetRegistry: not the contributor"),
        ):
            self.reg.withdrawStake(self._pick(k))

    @rule(bps=st.sampled_from([0, 1, 2500, 5000, 9999, 10_000, 10_000]))
    def set_slash_bps(self, bps: int) -> None:
        with boa.env.prank(self.system.deployer):
            self.system.params.setParam("slash_bps", bps)
        self.slash_bps = bps

    @rule(dt=seconds)
    def wait(self, dt: int) -> None:
        boa.env.time_travel(seconds=dt)

    @rule()
    def audit(self) -> None:
        for cid, m in self.c.items():
            c = self.reg.contributions(cid)
            assert (c[1], c[4], c[5], c[6], c[7]) == (
                m["who"],
                m["stake"],
                m["status"],
                m["yes"],
                m["no"],
            )
            assert (c[9], c[10], c[11]) == (m["unlock_at"], m["slashed"], m["withdrawn"])
        for a in self.contributors:
            staked = sum(m["stake"] for m in self.c.values() if m["who"] == a)
            returned = sum(
                m["stake"] - m["slashed"]
                for m in self.c.values()
                if m["who"] == a and m["withdrawn"]
            )
            assert self.token.balanceOf(a) == self.start[a] - staked + returned

    @invariant()
    def slashed_stake_is_never_withdrawable(self) -> None:
        held = sum(m["stake"] - m["slashed"] for m in self.c.values() if not m["withdrawn"])
        slashed = sum(m["slashed"] for m in self.c.values())
        assert all(m["slashed"] <= m["stake"] for m in self.c.values())
        # the registry holds exactly the unslashed, unwithdrawn stakes ...
        assert self.token.balanceOf(self.reg.address) == held
        # ... and every slashed wei went to the treasury, once
        assert self.token.balanceOf(self.system.treasury) - self.treasury_start == slashed


def test_stake_invariants(system: System) -> None:
    run_state_machine_as_test(lambda: StakeMachine(system), settings=SETTINGS)


# ---- DatanetRegistry access fees → RewardDistributor ----------------------------------------


class AccessFeeMachine(_Anchored):
    """Access fees: no price above the governable bound is ever set or charged; every fee
    reaches the distributor; the distributor never pays out more than it received; the
    total supply never changes."""

    def __init__(self, system: System) -> None:
        super().__init__()
        self.system = system
        self.reg = system.datanets
        self.dist = system.distributor
        self.token = system.token
        self.payers = [system.alice, system.bob, addr("dave")]
        system.fund(self.payers[2], 50 * OPEN)  # dave runs short
        self.owner = system.carol
        with boa.env.prank(self.owner):
            self.datanet = self.reg.createDatanet("fuzz-access", system.validators, 1, 0)
            self.reg.commitSnapshot(self.datanet, h("s1"), 10, "u")
        self.bound = 1_000 * OPEN
        self.prices = [0, 0]  # as stored
        self.allowance = dict.fromkeys(self.payers, 0)
        self.balance = {a: self.token.balanceOf(a) for a in self.payers}
        self.received = self.token.balanceOf(self.dist.address)  # fees paid in
        self.accesses = 0
        self.epoch = 0
        self.entitled: dict[str, int] = {}  # the latest posted cumulative per payer
        self.pending_at = 0
        self.paid = dict.fromkeys(self.payers, 0)

    def _charge(self, kind: int) -> int:
        return min(self.prices[kind], self.bound)

    @rule(export=st.integers(0, 1_200), train=st.integers(0, 1_200), outsider=st.booleans())
    def set_prices(self, export: int, train: int, outsider: bool) -> None:
        e, t = export * OPEN // 10, train * OPEN // 10
        who = self.payers[0] if outsider else self.owner
        with boa.env.prank(who):
            if outsider:
                with boa.reverts("DatanetRegistry: not the datanet owner"):
                    self.reg.setAccessPrices(self.datanet, e, t)
            elif max(e, t) > self.bound:
                with boa.reverts("DatanetRegistry: price above maximum"):
                    self.reg.setAccessPrices(self.datanet, e, t)
            else:
                self.reg.setAccessPrices(self.datanet, e, t)
                self.prices = [e, t]

    @rule(bound=st.sampled_from([0, OPEN, 25 * OPEN, 60 * OPEN, 1_000 * OPEN]))
    def set_bound(self, bound: int) -> None:
        with boa.env.prank(self.system.deployer):
            self.system.params.setParam("max_access_price", bound)
        self.bound = bound

    @rule(i=st.integers(0, 2), amount=st.integers(0, 150))
    def approve(self, i: int, amount: int) -> None:
        a = self.payers[i]
        with boa.env.prank(a):
            self.token.approve(self.reg.address, amount * OPEN)
        self.allowance[a] = amount * OPEN

    @rule(i=st.integers(0, 2), kind=st.integers(0, 2), version=st.integers(0, 2))
    def pay(self, i: int, kind: int, version: int) -> None:
        a = self.payers[i]
        with boa.env.prank(a):
            if version != 1:
                with boa.reverts("DatanetRegistry: unknown snapshot"):
                    self.reg.payAccess(self.datanet, version, kind)
                return
            if kind == 2:
                with boa.reverts("DatanetRegistry: unknown access kind"):
                    self.reg.payAccess(self.datanet, version, kind)
                return
            amount = self._charge(kind)
            if amount == 0:
                with boa.reverts("DatanetRegistry: access is free"):
                    self.reg.payAccess(self.datanet, version, kind)
            elif amount > self.allowance[a]:
                with boa.reverts("OpenToken: insufficient allowance"):
                    self.reg.payAccess(self.datanet, version, kind)
            elif amount > self.balance[a]:
                with boa.reverts("OpenToken: transfer amount exceeds balance"):
                    self.reg.payAccess(self.datanet, version, kind)
            else:
                access_id = self.reg.payAccess(self.datanet, version, kind)
                self.accesses += 1
                assert access_id == self.accesses
                assert amount <= self.bound
                self.allowance[a] -= amount
                self.balance[a] -= amount
                self.received += amount

    @rule(shares=st.lists(st.integers(0, 100), min_size=3, max_size=3), overstate=st.booleans())
    def post_root(self, shares: list[int], overstate: bool) -> None:
        """The operator posts cumulative entitlements that divide what was received (or one
        wei more than that, which must be refused)."""
        if self.pending_at and boa.env.timestamp < self.pending_at:
            return
        total_weight = sum(shares) or 1
        entries = {
            a: self.received * s // total_weight for a, s in zip(self.payers, shares, strict=True)
        }
        entries = {a: max(v, self.entitled.get(a, 0)) for a, v in entries.items()}
        tree = MerkleTree(entries)
        self.epoch += 1
        with boa.env.prank(self.system.operator):
            if overstate or tree.total > self.received:
                with boa.reverts("RewardDistributor: total exceeds funds"):
                    self.dist.postRoot(self.epoch, tree.root, self.received + 1, h("head"))
                return
            self.dist.postRoot(self.epoch, tree.root, tree.total, h("head"))
        self.entitled = entries
        self.tree = tree
        self.pending_at = boa.env.timestamp + HOUR
        boa.env.time_travel(seconds=HOUR)

    @precondition(lambda self: self.entitled)
    @rule(i=st.integers(0, 2))
    def claim(self, i: int) -> None:
        a = self.payers[i]
        cumulative = self.tree.entries[a]
        if cumulative <= self.paid[a]:
            with boa.reverts("RewardDistributor: nothing to claim"):
                self.dist.claim(a, cumulative, self.tree.proof(a))
            return
        self.dist.claim(a, cumulative, self.tree.proof(a))
        self.balance[a] += cumulative - self.paid[a]
        self.paid[a] = cumulative

    @rule()
    def audit(self) -> None:
        assert self.reg.accessCount() == self.accesses
        for a in self.payers:
            assert self.token.balanceOf(a) == self.balance[a]
            assert self.token.allowance(a, self.reg.address) == self.allowance[a]

    @invariant()
    def fees_within_bound_and_distributor_solvent(self) -> None:
        assert self.token.totalSupply() == SUPPLY
        export, train = self.reg.accessPrices(self.datanet)
        assert (export, train) == (self._charge(0), self._charge(1))
        assert export <= self.bound and train <= self.bound
        claimed = self.dist.totalClaimed()
        assert claimed == sum(self.paid.values()) <= self.received
        assert self.token.balanceOf(self.dist.address) == self.received - claimed
        assert self.token.balanceOf(self.reg.address) == 0


def test_access_fee_invariants(system: System) -> None:
    run_state_machine_as_test(lambda: AccessFeeMachine(system), settings=SETTINGS)
