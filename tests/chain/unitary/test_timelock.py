"""Timelock: the Governor is the only proposer, anyone executes once ready, self-administered."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_utils import keccak

from .contract_helpers import DAY, ZERO, System, addr
from .governance_helpers import TL_DELAY, Gov, calldata, deploy_gov

PROPOSER = keccak(text="PROPOSER_ROLE")
CANCELLER = keccak(text="CANCELLER_ROLE")
EXECUTOR = keccak(text="EXECUTOR_ROLE")
ADMIN = b"\x00" * 32
NO_PRED = b"\x00" * 32
SALT = b"\x01" * 32


@pytest.fixture
def gov(factories: dict[str, Any], system: System) -> Gov:
    return deploy_gov(factories, system)


def test_roles_at_deploy(gov: Gov, system: System) -> None:
    tl, g = gov.timelock, gov.governor.address
    assert tl.hasRole(PROPOSER, g) and tl.hasRole(CANCELLER, g)
    assert tl.hasRole(EXECUTOR, ZERO)  # open role: anyone executes
    assert tl.hasRole(ADMIN, tl.address)  # self-administered
    assert not tl.hasRole(ADMIN, system.deployer)
    assert not tl.hasRole(PROPOSER, system.deployer)
    assert tl.get_minimum_delay() == TL_DELAY


def test_constructor_rejects_zero_governor(factories: Any) -> None:
    with boa.reverts("Timelock: zero address"):
        factories["Timelock"].deploy(DAY, ZERO)


def test_only_the_governor_schedules(gov: Gov, system: System) -> None:
    data = calldata(system.params, "setParam", "min_stake", 1)
    with boa.env.prank(system.deployer), boa.reverts("access_control: account is missing role"):
        gov.timelock.schedule(system.params.address, 0, data, NO_PRED, SALT, TL_DELAY)
    with boa.env.prank(gov.governor.address):
        with boa.reverts("timelock_controller: insufficient delay"):
            gov.timelock.schedule(system.params.address, 0, data, NO_PRED, SALT, TL_DELAY - 1)
        gov.timelock.schedule(system.params.address, 0, data, NO_PRED, SALT, TL_DELAY)
    op = gov.timelock.hash_operation(system.params.address, 0, data, NO_PRED, SALT)
    assert gov.timelock.is_operation_pending(op) and not gov.timelock.is_operation_ready(op)
    boa.env.time_travel(seconds=TL_DELAY - 1)
    with boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(system.params.address, 0, data, NO_PRED, SALT)
    boa.env.time_travel(seconds=1)
    with boa.env.prank(addr("anyone")):
        gov.timelock.execute(system.params.address, 0, data, NO_PRED, SALT)
    assert system.params.min_stake() == 1 and gov.timelock.is_operation_done(op)


def test_only_the_governor_cancels(gov: Gov, system: System) -> None:
    data = calldata(system.params, "setParam", "min_stake", 1)
    with boa.env.prank(gov.governor.address):
        gov.timelock.schedule(system.params.address, 0, data, NO_PRED, SALT, TL_DELAY)
    op = gov.timelock.hash_operation(system.params.address, 0, data, NO_PRED, SALT)
    with boa.env.prank(system.alice), boa.reverts("access_control: account is missing role"):
        gov.timelock.cancel(op)
    with boa.env.prank(gov.governor.address):
        gov.timelock.cancel(op)
    boa.env.time_travel(seconds=TL_DELAY)
    with boa.reverts("timelock_controller: operation is not ready"):
        gov.timelock.execute(system.params.address, 0, data, NO_PRED, SALT)


def test_delay_and_roles_change_only_through_a_proposal(gov: Gov, system: System) -> None:
    with boa.env.prank(system.deployer):
        with boa.reverts("timelock_controller: caller must be timelock"):
            gov.timelock.update_delay(DAY)
        with boa.reverts("access_control: account is missing role"):
            gov.timelock.grantRole(PROPOSER, system.deployer)
    gov.pass_and_execute([(gov.timelock, calldata(gov.timelock, "update_delay", 3 * DAY))])
    assert gov.timelock.get_minimum_delay() == 3 * DAY


def test_timelock_holds_the_treasury(gov: Gov, system: System) -> None:
    assert system.params.treasury() == gov.timelock.address
    assert system.params.owner() == gov.timelock.address
    assert system.distributor.owner() == gov.timelock.address
    assert gov.grants.owner() == gov.timelock.address
    system.fund(gov.timelock.address, 10)
    alice_before = system.token.balanceOf(system.alice)
    gov.pass_and_execute([(system.token, calldata(system.token, "transfer", system.alice, 10))])
    assert system.token.balanceOf(system.alice) == alice_before + 10
    assert system.token.balanceOf(gov.timelock.address) == 0
