"""The table of governable keys: refused before sending, with the numbers and the fix."""

from __future__ import annotations

import pytest

from openledger.errors import ValidationError
from openledger.governance.keys import KEYS, parse_sets, parse_value, plan_changes
from openledger.units import OPEN

SPLIT = {"platform_bps": 1000, "owner_bps": 2000, "stakers_bps": 2000, "contributors_bps": 5000}


def plan(**sets: str) -> list:
    return plan_changes(sets, lambda: SPLIT)


def test_fee_split_merges_with_the_current_split() -> None:
    [change] = plan(platform_bps="500", contributors_bps="55%")
    assert (change.contract, change.fn, change.args) == (
        "ProtocolParams",
        "setFeeSplit",
        (500, 2000, 2000, 5500),
    )


def test_fee_split_not_summing_to_100_percent_is_refused_with_the_numbers() -> None:
    with pytest.raises(ValidationError) as exc:
        plan(platform_bps="600")
    e = exc.value
    assert "sum to 9600 bps" in e.message and "platform_bps=600" in e.message
    assert e.field == "fee split" and e.value == 9600 and "+400 bps" in (e.fix or "")


@pytest.mark.parametrize(
    "key,value,why",
    [
        ("slash_bps", "10001", "out of range"),
        ("slash_bps", "101%", "out of range"),
        ("quorum_bps", "0", "out of range"),
        ("epoch_length", "10", "out of range"),
        ("epoch_length", "soon", "not a duration"),
        ("min_stake", "-1", "not an amount"),
        ("treasury", "0x12", "not an address"),
        ("max_files_per_day", "1.5", "not a whole number"),
        ("grants_reference_price", "abc", "not a price"),
    ],
)
def test_out_of_range_or_malformed_values(key: str, value: str, why: str) -> None:
    with pytest.raises(ValidationError) as exc:
        plan(**{key: value})
    assert why in str(exc.value) and exc.value.field == key


def test_units() -> None:
    assert parse_value(KEYS["min_stake"], "12.5") == 12 * OPEN + OPEN // 2
    assert parse_value(KEYS["voting_period"], "5d") == 5 * 86_400
    assert parse_value(KEYS["timelock_delay"], "90") == 90
    assert parse_value(KEYS["slash_bps"], "12.5%") == 1250
    assert parse_value(KEYS["grants_reference_price"], "$0.5") == 500_000
    changes = plan(slash_bps="100%", voting_delay="1h", guardian="0x" + "ab" * 20)
    assert [(c.contract, c.fn, c.args) for c in changes] == [
        ("ProtocolParams", "setParam", ("slash_bps", 10_000)),
        ("Governor", "setVotingDelay", (3_600,)),
        ("Governor", "setGuardian", ("0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB",)),
    ]


def test_parse_sets_refuses_unknown_keys_and_bad_pairs() -> None:
    assert parse_sets(["slash_bps=100", "min_stake = 5"]) == {"slash_bps": "100", "min_stake": " 5"}
    for bad, text in (
        (["fee=1"], "not a governable key"),
        (["slash_bps"], "not KEY=VALUE"),
        (["slash_bps=1", "slash_bps=2"], "set twice"),
        ([], "at least one"),
    ):
        with pytest.raises(ValidationError, match=text):
            parse_sets(bad)


def test_access_price_bound_and_compute_share_are_governable() -> None:
    [change] = plan(max_access_price="250")
    assert (change.fn, change.args) == ("setParam", ("max_access_price", 250 * OPEN))
    with pytest.raises(ValidationError) as exc:
        plan(max_access_price="-1")
    assert exc.value.field == "max_access_price"
    [change] = plan(compute_share_bps="5%")
    assert change.args == ("compute_share_bps", 500)


def test_the_compute_share_never_exceeds_the_platform_share() -> None:
    with pytest.raises(ValidationError) as exc:
        plan(compute_share_bps="1001")  # platform is 1000
    assert exc.value.field == "compute_share_bps" and "raise platform_bps" in exc.value.fix
    current = {**SPLIT, "compute_share_bps": 800}
    with pytest.raises(ValidationError) as exc:  # the split alone would undercut it
        plan_changes({"platform_bps": "500", "contributors_bps": "5500"}, lambda: current)
    assert "above platform_bps 500" in exc.value.message
    # lowering both: the compute share goes down first, then the split
    calls = plan_changes(
        {"platform_bps": "500", "contributors_bps": "5500", "compute_share_bps": "400"},
        lambda: current,
    )
    assert [c.fn for c in calls] == ["setParam", "setFeeSplit"]
    # raising both: the split makes room first
    calls = plan_changes(
        {"platform_bps": "2000", "contributors_bps": "4000", "compute_share_bps": "1500"},
        lambda: current,
    )
    assert [c.fn for c in calls] == ["setFeeSplit", "setParam"]
