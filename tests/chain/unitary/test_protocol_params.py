"""ProtocolParams: defaults, owner-only changes, validation, version bumps, ownership."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import DAY, HOUR, OPEN, ZERO, addr, events

DEFAULTS = {
    "platform_bps": 1000,
    "owner_bps": 2000,
    "stakers_bps": 2000,
    "contributors_bps": 5000,
    "min_stake": 10 * OPEN,
    "slash_bps": 5000,
    "stake_unlock_delay": 7 * DAY,
    "epoch_length": DAY,
    "max_file_bytes": 10_000_000,
    "max_files_per_day": 20,
    "escrow_withdraw_delay": DAY,
    "min_deposit": OPEN,
    "root_activation_delay": HOUR,
    "max_access_price": 1_000 * OPEN,
    "compute_share_bps": 0,
}
SCALARS = [n for n in DEFAULTS if not n.endswith("_bps") or n == "slash_bps"]


def test_defaults(params: Any, system: Any) -> None:
    for name, value in DEFAULTS.items():
        assert getattr(params, name)() == value, name
    assert params.treasury() == system.treasury
    assert params.owner() == system.deployer
    assert params.version() == 1


def test_constructor_rejects_zero_treasury(factories: Any) -> None:
    with boa.reverts("ProtocolParams: treasury is the zero address"):
        factories["ProtocolParams"].deploy(ZERO)


@pytest.mark.parametrize("name", SCALARS)
def test_set_param(params: Any, system: Any, name: str) -> None:
    version = params.version()
    new = 1234
    with boa.env.prank(system.deployer):
        params.setParam(name, new)
    (ev,) = events(params, "ParamChanged")
    assert (ev.name, ev.old_value, ev.new_value) == (name, DEFAULTS[name], new)
    assert getattr(params, name)() == new
    assert params.version() == version + 1


@pytest.mark.parametrize(
    "name",
    ["platform_bps", "owner_bps", "stakers_bps", "contributors_bps", "nope", "", "MIN_STAKE"],
)
def test_set_param_unknown(params: Any, system: Any, name: str) -> None:
    with boa.env.prank(system.deployer), boa.reverts("ProtocolParams: unknown param"):
        params.setParam(name, 1)


def test_min_deposit(params: Any, system: Any) -> None:
    """The deposit floor: 1 OPEN by default, owner-only, any value, one version per change."""
    assert params.min_deposit() == OPEN
    version = params.version()
    with boa.env.prank(system.alice), boa.reverts("ProtocolParams: caller is not the owner"):
        params.setParam("min_deposit", 5 * OPEN)
    assert params.min_deposit() == OPEN and params.version() == version
    with boa.env.prank(system.deployer):
        params.setParam("min_deposit", 5 * OPEN)
        (ev,) = events(params, "ParamChanged")
        assert (ev.name, ev.old_value, ev.new_value) == ("min_deposit", OPEN, 5 * OPEN)
        assert params.min_deposit() == 5 * OPEN and params.version() == version + 1
        params.setParam("min_deposit", 0)  # no floor beyond the escrow's non-zero check
        assert params.min_deposit() == 0 and params.version() == version + 2
        with boa.reverts("ProtocolParams: unknown param"):
            params.setParam("MIN_DEPOSIT", 1)


def test_slash_bps_bounds(params: Any, system: Any) -> None:
    with boa.env.prank(system.deployer):
        params.setParam("slash_bps", 10_000)
        assert params.slash_bps() == 10_000
        params.setParam("slash_bps", 0)
        assert params.slash_bps() == 0
        with boa.reverts("ProtocolParams: bps above 10000"):
            params.setParam("slash_bps", 10_001)


def test_owner_only(params: Any, system: Any) -> None:
    with boa.env.prank(system.alice):
        with boa.reverts("ProtocolParams: caller is not the owner"):
            params.setParam("min_stake", 1)
        with boa.reverts("ProtocolParams: caller is not the owner"):
            params.setFeeSplit(2500, 2500, 2500, 2500)
        with boa.reverts("ProtocolParams: caller is not the owner"):
            params.setTreasury(system.alice)
        with boa.reverts("ProtocolParams: caller is not the owner"):
            params.transfer_ownership(system.alice)


def test_set_fee_split(params: Any, system: Any) -> None:
    version = params.version()
    with boa.env.prank(system.deployer):
        params.setFeeSplit(500, 1500, 3000, 5000)
    (ev,) = events(params, "FeeSplitChanged")
    assert (ev.platform, ev.owner, ev.stakers, ev.contributors) == (500, 1500, 3000, 5000)
    assert (
        params.platform_bps(),
        params.owner_bps(),
        params.stakers_bps(),
        params.contributors_bps(),
    ) == (500, 1500, 3000, 5000)
    assert params.version() == version + 1
    with boa.env.prank(system.deployer):
        params.setFeeSplit(0, 0, 0, 10_000)
    assert params.contributors_bps() == 10_000


@pytest.mark.parametrize(
    "split",
    [
        (1000, 2000, 2000, 4999),
        (1000, 2000, 2000, 5001),
        (0, 0, 0, 0),
        (10_001, 0, 0, 0),
        (2**256 - 1, 1, 0, 0),
        (2**255, 2**255, 10_000, 0),
    ],
)
def test_set_fee_split_must_sum_to_10000(params: Any, system: Any, split: tuple) -> None:
    with boa.env.prank(system.deployer), boa.reverts("ProtocolParams: fee split must sum to 10000"):
        params.setFeeSplit(*split)


def test_set_treasury(params: Any, system: Any) -> None:
    new = addr("new-treasury")
    version = params.version()
    with boa.env.prank(system.deployer):
        params.setTreasury(new)
    (ev,) = events(params, "TreasuryChanged")
    assert (ev.old, ev.new) == (system.treasury, new)
    assert params.treasury() == new
    assert params.version() == version + 1
    with (
        boa.env.prank(system.deployer),
        boa.reverts("ProtocolParams: treasury is the zero address"),
    ):
        params.setTreasury(ZERO)


def test_transfer_ownership(params: Any, system: Any) -> None:
    timelock = addr("timelock")
    with boa.env.prank(system.deployer):
        with boa.reverts("ProtocolParams: new owner is the zero address"):
            params.transfer_ownership(ZERO)
        params.transfer_ownership(timelock)
    (ev,) = events(params, "OwnershipTransferred")
    assert (ev.previous_owner, ev.new_owner) == (system.deployer, timelock)
    assert params.owner() == timelock
    with (
        boa.env.prank(system.deployer),
        boa.reverts("ProtocolParams: caller is not the owner"),
    ):
        params.setParam("min_stake", 1)
    with boa.env.prank(timelock):
        params.setParam("min_stake", 1)
    assert params.min_stake() == 1


def test_version_counts_every_change(params: Any, system: Any) -> None:
    with boa.env.prank(system.deployer):
        params.setParam("epoch_length", DAY)  # same value: still a change event
        params.setParam("epoch_length", 2 * DAY)
        params.setFeeSplit(1000, 2000, 2000, 5000)
        params.setTreasury(system.treasury)
    assert params.version() == 5


def test_max_access_price(params: Any, system: Any) -> None:
    """The bound on datanet access prices: 1,000 OPEN by default, any value, owner only."""
    version = params.version()
    with boa.env.prank(system.alice), boa.reverts("ProtocolParams: caller is not the owner"):
        params.setParam("max_access_price", 1)
    with boa.env.prank(system.deployer):
        params.setParam("max_access_price", 5 * OPEN)
        (ev,) = events(params, "ParamChanged")
        assert (ev.name, ev.old_value, ev.new_value) == ("max_access_price", 1_000 * OPEN, 5 * OPEN)
        params.setParam("max_access_price", 0)  # every datanet free
    assert params.max_access_price() == 0 and params.version() == version + 2


def test_compute_share_is_carved_from_the_platform_share(params: Any, system: Any) -> None:
    """compute_share_bps never exceeds platform_bps: neither setParam nor setFeeSplit can
    make it so, and a refused change moves nothing."""
    version = params.version()
    with boa.env.prank(system.deployer):
        with boa.reverts("ProtocolParams: compute share above platform"):
            params.setParam("compute_share_bps", 1_001)  # platform is 1000
        params.setParam("compute_share_bps", 1_000)
        (ev,) = events(params, "ParamChanged")
        assert (ev.name, ev.old_value, ev.new_value) == ("compute_share_bps", 0, 1_000)
        assert params.compute_share_bps() == 1_000 and params.version() == version + 1
        with boa.reverts("ProtocolParams: compute share above platform"):
            params.setFeeSplit(999, 2001, 2000, 5000)
        assert params.platform_bps() == 1_000 and params.version() == version + 1
        params.setFeeSplit(1_000, 1_000, 3_000, 5_000)  # equal is allowed
        params.setParam("compute_share_bps", 200)
        params.setFeeSplit(200, 1_800, 3_000, 5_000)
        with boa.reverts("ProtocolParams: compute share above platform"):
            params.setParam("compute_share_bps", 201)
    assert (params.compute_share_bps(), params.platform_bps()) == (200, 200)
    with boa.env.prank(system.alice), boa.reverts("ProtocolParams: caller is not the owner"):
        params.setParam("compute_share_bps", 0)
