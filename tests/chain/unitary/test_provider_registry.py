"""ProviderRegistry: registration with a stake, the models a provider serves, exit and
withdrawal after the delay, owner-only slashing and settings, and a stateful check of its
invariants (balance == sum of stakes; nobody withdraws more than it staked minus what was
slashed; an exited or withdrawn provider never serves)."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.conftest import THOROUGH

from .contract_helpers import DAY, OPEN, ZERO, System, addr, events

MIN = 100 * OPEN
DELAY = DAY
URL = "https://gpu.example:8443/v1"


@pytest.fixture(scope="session")
def factory(factories: dict[str, Any]) -> Any:
    return factories["ProviderRegistry"]


def deploy(
    factory: Any,
    system: System,
    token: str | None = None,
    *,
    min_stake: int = MIN,
    delay: int = DELAY,
) -> Any:
    with boa.env.prank(system.deployer):
        return factory.deploy(
            token or system.token.address, system.params.address, min_stake, delay
        )


@pytest.fixture
def reg(factory: Any, system: System) -> Any:
    registry = deploy(factory, system)
    for who in (system.alice, system.bob, system.carol):
        system.approve(who, registry.address)
    return registry


def register(
    reg: Any, who: str, models: list[int] = (1, 2), stake: int = MIN, endpoint: str = URL
) -> None:
    with boa.env.prank(who):
        reg.register(endpoint, list(models), stake)


def test_constructor(factory: Any, reg: Any, system: System) -> None:
    assert reg.owner() == system.deployer
    assert (reg.token(), reg.params()) == (system.token.address, system.params.address)
    assert (reg.minStake(), reg.exitDelay(), reg.providerCount(), reg.totalStaked()) == (
        MIN,
        DELAY,
        0,
        0,
    )
    assert reg.MAX_MODELS() == 16 and reg.MAX_EXIT_DELAY() == 365 * DAY
    with boa.env.prank(system.deployer):
        for args in (
            (ZERO, system.params.address, MIN, DELAY),
            (system.token.address, ZERO, MIN, DELAY),
        ):
            with boa.reverts("ProviderRegistry: zero address"):
                factory.deploy(*args)
        with boa.reverts("ProviderRegistry: exit delay too long"):
            factory.deploy(system.token.address, system.params.address, MIN, 365 * DAY + 1)


def test_register(reg: Any, system: System) -> None:
    before = system.token.balanceOf(system.alice)
    register(reg, system.alice, [7, 3], 150 * OPEN)
    (ev,) = events(reg, "ProviderRegistered")
    assert (ev.provider, ev.endpoint, list(ev.model_ids), ev.stake) == (
        system.alice,
        URL,
        [7, 3],
        150 * OPEN,
    )
    assert reg.providers(system.alice) == (URL, 150 * OPEN, True, 0, boa.env.timestamp)
    assert reg.getModels(system.alice) == [7, 3]
    assert reg.serves(system.alice, 7) and reg.serves(system.alice, 3)
    assert not reg.serves(system.alice, 1) and not reg.serves(system.bob, 7)
    assert not reg.serves(system.alice, 0)
    assert system.token.balanceOf(system.alice) == before - 150 * OPEN
    assert system.token.balanceOf(reg.address) == reg.totalStaked() == 150 * OPEN
    register(reg, system.bob, [7])
    assert reg.providerCount() == 2
    assert (reg.providerAt(0), reg.providerAt(1)) == (system.alice, system.bob)
    with boa.reverts("ProviderRegistry: index out of range"):
        reg.providerAt(2)
    # an unknown address reads as all zero
    assert reg.providers(system.carol) == ("", 0, False, 0, 0) and reg.getModels(system.carol) == []


def test_register_refusals(reg: Any, system: System) -> None:
    for kwargs, reason in (
        ({"stake": MIN - 1}, "stake below minimum"),
        ({"endpoint": ""}, "empty endpoint"),
        ({"models": []}, "no models"),
        ({"models": [1, 0]}, "zero model id"),
        ({"models": [4, 5, 4]}, "duplicate model id"),
    ):
        with boa.reverts(f"ProviderRegistry: {reason}"):
            register(reg, system.alice, **kwargs)
    with pytest.raises(Exception):  # noqa: B017 - the ABI bound (16) refuses a 17th model
        register(reg, system.alice, list(range(1, 18)))
    register(reg, system.alice, list(range(1, 17)))  # 16 is fine
    with boa.reverts("ProviderRegistry: already registered"):
        register(reg, system.alice)
    dave = addr("dave")  # holds no OPEN and approved nothing
    with boa.reverts():
        register(reg, dave)
    assert reg.providerCount() == 1


def test_active_provider_changes(reg: Any, system: System) -> None:
    register(reg, system.alice, [1, 2])
    with boa.env.prank(system.alice):
        reg.addStake(5 * OPEN)
        (ev,) = events(reg, "StakeAdded")
        assert (ev.provider, ev.amount, ev.stake) == (system.alice, 5 * OPEN, MIN + 5 * OPEN)
        with boa.reverts("ProviderRegistry: zero amount"):
            reg.addStake(0)
        reg.setModels([2, 9])
        (ev,) = events(reg, "ModelsChanged")
        assert (ev.provider, list(ev.model_ids)) == (system.alice, [2, 9])
        assert not reg.serves(system.alice, 1) and reg.serves(system.alice, 2)
        assert reg.serves(system.alice, 9) and reg.getModels(system.alice) == [2, 9]
        for models, reason in (
            ([], "no models"),
            ([0], "zero model id"),
            ([3, 3], "duplicate model id"),
        ):
            with boa.reverts(f"ProviderRegistry: {reason}"):
                reg.setModels(models)
        reg.setEndpoint("http://other")
        (ev,) = events(reg, "EndpointChanged")
        assert (ev.provider, ev.endpoint) == (system.alice, "http://other")
        with boa.reverts("ProviderRegistry: empty endpoint"):
            reg.setEndpoint("")
    assert reg.providers(system.alice)[:2] == ("http://other", MIN + 5 * OPEN)
    assert system.token.balanceOf(reg.address) == reg.totalStaked() == MIN + 5 * OPEN
    with boa.env.prank(system.bob):  # not registered
        for call in (
            lambda: reg.addStake(OPEN),
            lambda: reg.setModels([1]),
            lambda: reg.setEndpoint("x"),
            reg.exit,
        ):
            with boa.reverts("ProviderRegistry: not an active provider"):
                call()


def test_exit_and_withdraw(reg: Any, system: System) -> None:
    register(reg, system.alice, [1, 2], 2 * MIN)
    before = system.token.balanceOf(system.alice)
    with boa.env.prank(system.alice):
        with boa.reverts("ProviderRegistry: still active"):
            reg.withdraw()
        reg.exit()
        (ev,) = events(reg, "ProviderExited")
        assert (ev.provider, ev.unlock_at) == (system.alice, boa.env.timestamp + DELAY)
        assert not reg.serves(system.alice, 1) and reg.providers(system.alice)[2] is False
        for call in (
            reg.exit,
            lambda: reg.addStake(OPEN),
            lambda: reg.setModels([1]),
            lambda: reg.setEndpoint("x"),
        ):
            with boa.reverts("ProviderRegistry: not an active provider"):
                call()
        with boa.reverts("ProviderRegistry: already registered"):
            reg.register(URL, [1], MIN)
        boa.env.time_travel(seconds=DELAY - 1)
        with boa.reverts("ProviderRegistry: stake locked"):
            reg.withdraw()
        boa.env.time_travel(seconds=1)
        reg.withdraw()
        (ev,) = events(reg, "ProviderWithdrawn")
        assert (ev.provider, ev.amount) == (system.alice, 2 * MIN)
        with boa.reverts("ProviderRegistry: not registered"):
            reg.withdraw()
    assert system.token.balanceOf(system.alice) == before + 2 * MIN
    assert reg.providers(system.alice) == ("", 0, False, 0, 0) and reg.getModels(system.alice) == []
    assert not reg.serves(system.alice, 1) and reg.totalStaked() == 0
    # it may register again, with other models; it is enumerated once
    register(reg, system.alice, [2, 3])
    assert reg.serves(system.alice, 3) and not reg.serves(system.alice, 1)
    assert reg.providerCount() == 1 and reg.providerAt(0) == system.alice


def test_slash(reg: Any, system: System) -> None:
    register(reg, system.alice, stake=3 * MIN)
    with boa.env.prank(system.alice), boa.reverts("ProviderRegistry: caller is not the owner"):
        reg.slash(system.alice, MIN, "self")
    treasury = system.params.treasury()
    t0 = system.token.balanceOf(treasury)
    with boa.env.prank(system.deployer):
        reg.slash(system.alice, MIN, "bad receipts")
        (ev,) = events(reg, "ProviderSlashed")
        assert (ev.provider, ev.amount, ev.stake, ev.treasury, ev.reason) == (
            system.alice,
            MIN,
            2 * MIN,
            treasury,
            "bad receipts",
        )
        with boa.reverts("ProviderRegistry: not registered"):
            reg.slash(system.bob, MIN, "")
        with boa.reverts("ProviderRegistry: nothing to slash"):
            reg.slash(system.alice, 0, "")
    assert reg.providers(system.alice)[1:3] == (2 * MIN, True)  # still active
    # during the exit delay it can still be slashed, at most what is left
    with boa.env.prank(system.alice):
        reg.exit()
    with boa.env.prank(system.deployer):
        reg.slash(system.alice, 10 * MIN, "gone")
        assert events(reg, "ProviderSlashed")[0].amount == 2 * MIN
        with boa.reverts("ProviderRegistry: nothing to slash"):
            reg.slash(system.alice, 1, "")
    assert system.token.balanceOf(treasury) == t0 + 3 * MIN
    assert system.token.balanceOf(reg.address) == reg.totalStaked() == 0
    boa.env.time_travel(seconds=DELAY)
    before = system.token.balanceOf(system.alice)
    with boa.env.prank(system.alice):
        reg.withdraw()  # nothing left: it only clears the registration
        assert events(reg, "ProviderWithdrawn")[0].amount == 0
    assert system.token.balanceOf(system.alice) == before
    assert reg.providers(system.alice)[4] == 0


def test_owner_settings(reg: Any, system: System) -> None:
    for call in (
        lambda: reg.setMinStake(1),
        lambda: reg.setExitDelay(1),
        lambda: reg.transfer_ownership(system.bob),
    ):
        with boa.env.prank(system.alice), boa.reverts("ProviderRegistry: caller is not the owner"):
            call()
    register(reg, system.alice)  # exits under the old delay
    with boa.env.prank(system.alice):
        reg.exit()
    unlock = reg.providers(system.alice)[3]
    with boa.env.prank(system.deployer):
        reg.setMinStake(5 * MIN)
        (ev,) = events(reg, "MinStakeChanged")
        assert (ev.old_value, ev.new_value) == (MIN, 5 * MIN)
        reg.setExitDelay(3 * DAY)
        (ev,) = events(reg, "ExitDelayChanged")
        assert (ev.old_value, ev.new_value) == (DELAY, 3 * DAY)
        with boa.reverts("ProviderRegistry: exit delay too long"):
            reg.setExitDelay(365 * DAY + 1)
        reg.setExitDelay(365 * DAY)
        reg.setExitDelay(3 * DAY)
    assert reg.providers(system.alice)[3] == unlock  # an exit already made keeps its time
    with boa.reverts("ProviderRegistry: stake below minimum"):
        register(reg, system.bob, stake=4 * MIN)
    register(reg, system.bob, stake=5 * MIN)
    with boa.env.prank(system.bob):
        reg.exit()
    assert reg.providers(system.bob)[3] == boa.env.timestamp + 3 * DAY
    with boa.env.prank(system.deployer):
        with boa.reverts("ProviderRegistry: new owner is the zero address"):
            reg.transfer_ownership(ZERO)
        reg.transfer_ownership(system.carol)
    assert reg.owner() == system.carol
    with boa.env.prank(system.carol):
        reg.slash(system.bob, OPEN, "new owner")
    with boa.env.prank(system.deployer), boa.reverts("ProviderRegistry: caller is not the owner"):
        reg.setMinStake(0)


def test_transfer_failures(factory: Any, system: System, false_token: Any) -> None:
    reg = deploy(factory, system, false_token.address)
    false_token.mint(system.alice, 10 * MIN)
    register(reg, system.alice, stake=2 * MIN)
    false_token.set_fail(True)
    with boa.reverts("ProviderRegistry: transfer failed"):
        register(reg, system.bob)
    with boa.env.prank(system.alice):
        with boa.reverts("ProviderRegistry: transfer failed"):
            reg.addStake(OPEN)
        reg.exit()
    with boa.env.prank(system.deployer), boa.reverts("ProviderRegistry: transfer failed"):
        reg.slash(system.alice, OPEN, "")
    boa.env.time_travel(seconds=DELAY)
    with boa.env.prank(system.alice), boa.reverts("ProviderRegistry: transfer failed"):
        reg.withdraw()
    false_token.set_fail(False)
    with boa.env.prank(system.alice):
        reg.withdraw()
    assert false_token.balanceOf(system.alice) == 10 * MIN


# ---- invariants ---------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=200 if THOROUGH else 12,  # make test-thorough
    stateful_step_count=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

actor = st.integers(min_value=0, max_value=2)
# valid lists mostly (else few registrations succeed); `_mangle` makes some of them invalid
model_lists = st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4, unique=True)
mangle = st.sampled_from(["keep", "keep", "keep", "empty", "zero", "duplicate"])


def _mangle(models: list[int], how: str) -> list[int]:
    if how == "empty":
        return []
    if how == "zero":
        return [*models, 0]
    return [*models, models[0]] if how == "duplicate" else models


class ProviderMachine(RuleBasedStateMachine):
    """Random registrations, stake, model changes, exits, withdrawals, slashes and waits
    against a Python model of each provider; the chain must agree after every step."""

    def __init__(self, reg: Any, system: System) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        env = boa.env
        self._traces = (env.sha3_trace, env.sstore_trace)
        env.sha3_trace, env.sstore_trace = {}, {}
        self.reg, self.token, self.owner = reg, system.token, system.deployer
        self.actors = [system.alice, system.bob, system.carol]
        self.start = {a: self.token.balanceOf(a) for a in self.actors}
        self.staked = dict.fromkeys(self.actors, 0)  # everything ever staked
        self.slashed = dict.fromkeys(self.actors, 0)
        self.withdrawn = dict.fromkeys(self.actors, 0)
        # the model: address -> {"stake", "active", "unlock_at", "models"} while registered
        self.p: dict[str, dict[str, Any]] = {}

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)
        boa.env.sha3_trace, boa.env.sstore_trace = self._traces

    @initialize(models=st.lists(model_lists, min_size=3, max_size=3))
    def register_all(self, models: list[list[int]]) -> None:
        """Every actor starts registered, so that most steps act on a provider."""
        for i, m in enumerate(models):
            self.register(i, m, "keep", i)

    @staticmethod
    def _valid(models: list[int]) -> bool:
        return bool(models) and 0 not in models and len(set(models)) == len(models)

    @rule(i=actor, models=model_lists, how=mangle, extra=st.integers(min_value=-1, max_value=3))
    def register(self, i: int, models: list[int], how: str, extra: int) -> None:
        who, stake, models = self.actors[i], MIN + extra * OPEN, _mangle(models, how)
        with boa.env.prank(who):
            if who in self.p or stake < MIN or not self._valid(models):
                with boa.reverts():
                    self.reg.register(URL, models, stake)
                return
            self.reg.register(URL, models, stake)
        self.staked[who] += stake
        self.p[who] = {"stake": stake, "active": True, "unlock_at": 0, "models": models}

    @rule(i=actor, amount=st.integers(min_value=1, max_value=3))
    def add_stake(self, i: int, amount: int) -> None:
        who = self.actors[i]
        with boa.env.prank(who):
            if not self.p.get(who, {}).get("active") or amount == 0:
                with boa.reverts():
                    self.reg.addStake(amount * OPEN)
                return
            self.reg.addStake(amount * OPEN)
        self.staked[who] += amount * OPEN
        self.p[who]["stake"] += amount * OPEN

    @rule(i=actor, models=model_lists, how=mangle)
    def set_models(self, i: int, models: list[int], how: str) -> None:
        who, models = self.actors[i], _mangle(models, how)
        with boa.env.prank(who):
            if not self.p.get(who, {}).get("active") or not self._valid(models):
                with boa.reverts():
                    self.reg.setModels(models)
                return
            self.reg.setModels(models)
        self.p[who]["models"] = models

    @rule(i=actor)
    def exit(self, i: int) -> None:
        who = self.actors[i]
        with boa.env.prank(who):
            if not self.p.get(who, {}).get("active"):
                with boa.reverts("ProviderRegistry: not an active provider"):
                    self.reg.exit()
                return
            self.reg.exit()
        self.p[who].update(active=False, unlock_at=boa.env.timestamp + DELAY)

    @rule(i=actor)
    def withdraw(self, i: int) -> None:
        who = self.actors[i]
        rec = self.p.get(who)
        before = self.token.balanceOf(who)
        with boa.env.prank(who):
            if rec is None or rec["active"] or boa.env.timestamp < rec["unlock_at"]:
                with boa.reverts():
                    self.reg.withdraw()
                return
            self.reg.withdraw()
        paid = self.token.balanceOf(who) - before
        assert paid == rec["stake"]
        self.withdrawn[who] += paid
        del self.p[who]

    @rule(i=actor)
    def leave(self, i: int) -> None:
        """exit, the delay, withdraw in one step: short runs then also register again."""
        if self.p.get(self.actors[i], {}).get("active"):
            self.exit(i)
            self.wait(DELAY)
            self.withdraw(i)

    @rule(i=actor, amount=st.integers(min_value=0, max_value=150))
    def slash(self, i: int, amount: int) -> None:
        who = self.actors[i]
        rec = self.p.get(who)
        with boa.env.prank(self.owner):
            if rec is None or min(amount * OPEN, rec["stake"]) == 0:
                with boa.reverts():
                    self.reg.slash(who, amount * OPEN, "fuzz")
                return
            self.reg.slash(who, amount * OPEN, "fuzz")
        cut = min(amount * OPEN, rec["stake"])
        rec["stake"] -= cut
        self.slashed[who] += cut

    @rule(dt=st.sampled_from([1, DELAY - 1, DELAY, 2 * DELAY]))
    def wait(self, dt: int) -> None:
        boa.env.time_travel(seconds=dt)

    @invariant()
    def balance_is_the_sum_of_stakes(self) -> None:
        stakes = sum(r["stake"] for r in self.p.values())
        assert self.token.balanceOf(self.reg.address) == self.reg.totalStaked() == stakes

    @invariant()
    def nobody_withdraws_more_than_staked_minus_slashed(self) -> None:
        for a in self.actors:
            assert self.withdrawn[a] <= self.staked[a] - self.slashed[a]
            held = self.p[a]["stake"] if a in self.p else 0
            assert self.withdrawn[a] + held == self.staked[a] - self.slashed[a]
            assert self.token.balanceOf(a) == self.start[a] - self.staked[a] + self.withdrawn[a]

    @invariant()
    def chain_matches_the_model_and_only_active_providers_serve(self) -> None:
        for a in self.actors:
            rec = self.p.get(a)
            endpoint, stake, active, unlock_at, registered_at = self.reg.providers(a)
            if rec is None:
                assert (stake, active, registered_at) == (0, False, 0)
                assert self.reg.getModels(a) == []
            else:
                assert (stake, active, unlock_at) == (rec["stake"], rec["active"], rec["unlock_at"])
                assert registered_at != 0 and list(self.reg.getModels(a)) == rec["models"]
            for m in range(6):
                expected = rec is not None and rec["active"] and m in rec["models"]
                assert self.reg.serves(a, m) == expected


def test_provider_invariants(reg: Any, system: System) -> None:
    run_state_machine_as_test(lambda: ProviderMachine(reg, system), settings=SETTINGS)
