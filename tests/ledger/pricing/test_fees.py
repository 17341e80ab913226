"""Fees and their split in exact wei (DESIGN §5): rounding, largest remainder, the four parts."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.errors import ValidationError
from openledger.ledger.pricing.fees import (
    WEIGHT_SCALE,
    Beneficiary,
    FeeSplit,
    Payout,
    allocate,
    divide_pools,
    fee,
    split_fee,
    weights_ppb,
)
from openledger.units import OPEN

TREASURY = "0x" + "7e" * 20
OWNER = "0x" + "d0" * 20
ALICE, ERIN, FRANK = "0x" + "a1" * 20, "0x" + "e1" * 20, "0x" + "f1" * 20
DEFAULT = FeeSplit(1_000, 2_000, 2_000, 5_000, version=3)
# three training contributions of datanet 1: records 2/1/1, stakes 10/30/20 OPEN
TRAINING = (
    Beneficiary(contribution=11, datanet=1, contributor=ALICE, records=2, stake=10 * OPEN),
    Beneficiary(contribution=12, datanet=1, contributor=ERIN, records=1, stake=30 * OPEN),
    Beneficiary(contribution=13, datanet=1, contributor=FRANK, records=1, stake=20 * OPEN),
)


# --------------------------------------------------------------------------- fee


@pytest.mark.parametrize(
    ("prompt", "completion", "price_in", "price_out", "expected"),
    [
        (1000, 0, 3 * OPEN // 1000, 0, 3 * OPEN // 1000),  # exactly 1k prompt tokens
        (40, 10, 3 * OPEN // 1000, 7 * OPEN // 1000, 190_000_000_000_000),  # exact: 1.9e14
        (0, 1000, 0, 7, 7),
        (1, 0, 1, 0, 1),  # 1/1000 wei rounds up to 1: never free because short
        (3, 0, 333, 0, 1),  # 999/1000 → 1
        (1, 1, 1_001, 1, 2),  # 1002/1000 → 2
        (2, 0, 500, 0, 1),  # 1000/1000 exactly → 1, not 2
        (1_999, 1, 1, 0, 2),  # (1999 + 0)/1000 → 2
        (0, 0, 10**18, 10**18, 0),  # nothing generated from nothing asked: 0
        (10**6, 10**6, 10**18, 10**18, 2 * 10**21),
    ],
)
def test_fee_is_the_exact_price_rounded_up_to_a_wei(
    prompt: int, completion: int, price_in: int, price_out: int, expected: int
) -> None:
    assert fee(prompt, completion, price_in, price_out) == expected


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**20), st.integers(0, 10**20))
def test_fee_is_the_ceiling_of_the_exact_fraction(p: int, c: int, pin: int, pout: int) -> None:
    exact = Fraction(p * pin + c * pout, 1000)
    got = fee(p, c, pin, pout)
    assert got - 1 < exact <= got


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 0, 1, 1), "prompt_tokens"),
        ((1, -5, 1, 1), "completion_tokens"),
        ((1, 1, 1.5, 1), "price_in"),
        ((1, 1, 1, "7"), "price_out"),
    ],
)
def test_fee_refuses_negative_or_non_integer_inputs_naming_the_field(
    args: tuple, field: str
) -> None:
    with pytest.raises(ValidationError, match=field) as exc:
        fee(*args)
    assert exc.value.field == field and exc.value.http_status == 422


# --------------------------------------------------------------------------- allocate

weights_st = st.dictionaries(st.integers(0, 50), st.integers(0, 10**12), max_size=12)


@given(st.integers(0, 10**30), weights_st)
def test_allocate_sums_exactly_and_shares_are_within_one_wei(
    amount: int, weights: dict[int, int]
) -> None:
    out = allocate(amount, weights)
    total = sum(weights.values())
    if amount == 0 or total == 0:
        assert out == {}
        return
    assert sum(out.values()) == amount
    assert set(out) == {k for k, w in weights.items() if w > 0}  # zero weights get nothing
    for k, share in out.items():
        # |share - amount·w/total| < 1, in integers
        assert abs(share * total - amount * weights[k]) < total
        assert share >= 0


@given(st.integers(0, 10**30), weights_st, st.randoms(use_true_random=False))
def test_allocate_is_deterministic_whatever_the_insertion_order(
    amount: int, weights: dict[int, int], rnd: random.Random
) -> None:
    items = list(weights.items())
    rnd.shuffle(items)
    assert allocate(amount, dict(items)) == allocate(amount, weights)
    assert allocate(amount, weights) == allocate(amount, dict(weights))


@given(st.integers(1, 10**24), st.integers(1, 10**9), st.integers(1, 10**9))
def test_allocate_is_proportional_when_divisible(unit: int, a: int, b: int) -> None:
    assert allocate(unit * (a + b), {"a": a, "b": b}) == {"a": unit * a, "b": unit * b}


def test_allocate_gives_remainders_to_the_largest_then_to_the_smallest_key() -> None:
    assert allocate(1, {"b": 1, "a": 1}) == {"a": 1, "b": 0}
    assert allocate(2, {"c": 1, "b": 1, "a": 1}) == {"a": 1, "b": 1, "c": 0}
    # 10 over 3:3:1 → 4.29, 4.29, 1.43 → floors 4,4,1 and the one wei left goes to the
    # largest remainder (0.43 of "z"), not to the first key
    assert allocate(10, {"x": 3, "y": 3, "z": 1}) == {"x": 4, "y": 4, "z": 2}
    # tuple keys order element-wise
    assert allocate(1, {(1, 0): 1, (0, 5): 1}) == {(0, 5): 1, (1, 0): 0}
    assert allocate(5, {"a": 0, "b": 2}) == {"b": 5}
    assert allocate(5, {"a": 0}) == {} and allocate(0, {"a": 1}) == {} and allocate(5, {}) == {}


# --------------------------------------------------------------------------- split_fee


def payouts_total(payouts: list[Payout]) -> int:
    return sum(p.amount for p in payouts)


def test_default_split_in_hand_computed_wei() -> None:
    """1,000,003 wei, erin attributed 60 %.

    parts 10/20/20/50 %: 100000.3, 200000.6, 200000.6, 500001.5 → floors 100000, 200000,
    200000, 500001 and 2 wei left: to owner and stakers (remainder 0.6, owner < stakers).
    stakers 200,001 pooled. contributors 500,001: erin 0.6 → 300000.6, unattributed 0.4
    → 200000.4 → erin 300,001; the 200,000 unattributed pooled.
    """
    sp = split_fee(
        1_000_003,
        DEFAULT,
        treasury=TREASURY,
        owner=OWNER,
        contributions=TRAINING,
        attribution={12: 600_000_000},
    )
    assert sp.parts == {
        "platform": 100_000,
        "owner": 200_001,
        "stakers": 200_001,
        "contributors": 500_001,
    }
    assert sp.payouts == [
        Payout(TREASURY, "platform", 100_000),
        Payout(OWNER, "owner", 200_001),
        Payout(ERIN, "contributor", 300_001, 1, 12),
    ]
    assert sp.pools == {"staker": 200_001, "unattributed": 200_000}
    assert payouts_total(sp.payouts) + sum(sp.pools.values()) == 1_000_003


def test_pools_are_divided_by_stake_and_by_records() -> None:
    """stakers 200,001 by stake 10:30:20 → 33333.5, 100000.5, 66667 → alice gets the wei
    left (tie with erin, smaller id); unattributed 200,000 by records 2:1:1."""
    out = divide_pools(
        {("0xs", "staker"): 200_001, ("0xs", "unattributed"): 200_000}, {"0xs": TRAINING}
    )
    assert [p for _, p in out] == [
        Payout(ALICE, "staker", 33_334, 1, 11),
        Payout(ERIN, "staker", 100_000, 1, 12),
        Payout(FRANK, "staker", 66_667, 1, 13),
        Payout(ALICE, "unattributed", 100_000, 1, 11),
        Payout(ERIN, "unattributed", 50_000, 1, 12),
        Payout(FRANK, "unattributed", 50_000, 1, 13),
    ]
    assert {h for h, _ in out} == {"0xs"}


def test_dividing_a_pool_whose_set_is_unknown_or_weightless_is_refused() -> None:
    with pytest.raises(ValidationError, match="not stored"):
        divide_pools({("0xgone", "staker"): 5}, {})
    unstaked = tuple(
        Beneficiary(c.contribution, c.datanet, c.contributor, c.records, 0) for c in TRAINING
    )
    with pytest.raises(ValidationError, match="no positive weight"):
        divide_pools({("0xs", "staker"): 5}, {"0xs": unstaked})
    assert divide_pools({("0xs", "staker"): 0}, {}) == []


def test_a_market_sized_fee_splits_exactly() -> None:
    """190,000,000,000,000 wei (40 prompt + 10 completion tokens at 0.003/0.007 OPEN per
    1k): parts divide exactly; stakers 38e12 by 10:30:20 → 6333333333333.3, 19e12,
    12666666666666.7 → frank gets the wei left; no attribution: 95e12 by records 2:1:1."""
    sp = split_fee(
        190 * 10**12,
        DEFAULT,
        treasury=TREASURY,
        owner=OWNER,
        contributions=TRAINING,
        attribution={},
    )
    assert sp.parts == {
        "platform": 19 * 10**12,
        "owner": 38 * 10**12,
        "stakers": 38 * 10**12,
        "contributors": 95 * 10**12,
    }
    assert sp.pools == {"staker": 38 * 10**12, "unattributed": 95 * 10**12}
    pooled = divide_pools({("0xs", r): v for r, v in sp.pools.items()}, {"0xs": TRAINING})
    by = {(p.role, p.account): p.amount for p in [*sp.payouts, *(p for _, p in pooled)]}
    assert by == {
        ("platform", TREASURY): 19 * 10**12,
        ("owner", OWNER): 38 * 10**12,
        ("staker", ALICE): 6_333_333_333_333,
        ("staker", ERIN): 19 * 10**12,
        ("staker", FRANK): 12_666_666_666_667,
        ("unattributed", ALICE): 47_500_000_000_000,
        ("unattributed", ERIN): 23_750_000_000_000,
        ("unattributed", FRANK): 23_750_000_000_000,
    }


def test_pooling_loses_less_to_rounding_than_dividing_each_fee() -> None:
    """Three fees of 1,000,003 wei: dividing each one's 200,001-wei stakers' part gives
    alice 33,334 three times (the rounding wei each time); the pooled 600,003 gives her
    100,000.5 → 100,001 at most, and erin/frank their exact 300,001.5 / 200,001."""
    pooled = divide_pools({("0xs", "staker"): 3 * 200_001}, {"0xs": TRAINING})
    assert {p.account: p.amount for _, p in pooled} == {
        ALICE: 100_001,
        ERIN: 300_001,
        FRANK: 200_001,
    }


def test_no_stake_sends_the_stakers_part_to_the_treasury() -> None:
    unstaked = tuple(
        Beneficiary(c.contribution, c.datanet, c.contributor, c.records, 0) for c in TRAINING
    )
    sp = split_fee(
        1_000,
        DEFAULT,
        treasury=TREASURY,
        owner=OWNER,
        contributions=unstaked,
        attribution={12: WEIGHT_SCALE},
    )
    assert sp.parts == {"platform": 100, "owner": 200, "stakers": 200, "contributors": 500}
    assert [p for p in sp.payouts if p.role == "staker"] == [Payout(TREASURY, "staker", 200)]
    assert [p for p in sp.payouts if p.role == "contributor"] == [
        Payout(ERIN, "contributor", 500, 1, 12)
    ]
    assert sp.pools == {}  # nothing staked, and fully attributed
    assert payouts_total(sp.payouts) == 1_000


def test_no_attribution_pools_the_contributors_part_for_the_records() -> None:
    sp = split_fee(
        1_000, DEFAULT, treasury=TREASURY, owner=OWNER, contributions=TRAINING, attribution={}
    )
    assert [p for p in sp.payouts if p.role in ("contributor", "unattributed")] == []
    assert sp.pools == {"staker": 200, "unattributed": 500}
    # zero and negative weights are no attribution either
    same = split_fee(
        1_000,
        DEFAULT,
        treasury=TREASURY,
        owner=OWNER,
        contributions=TRAINING,
        attribution={11: 0, 13: -5},
    )
    assert same == sp


def test_no_training_contributions_send_everything_but_owner_to_the_treasury() -> None:
    sp = split_fee(1_001, DEFAULT, treasury=TREASURY, owner=OWNER, contributions=(), attribution={})
    assert sp.payouts == [
        Payout(TREASURY, "platform", sp.parts["platform"]),
        Payout(OWNER, "owner", sp.parts["owner"]),
        Payout(TREASURY, "staker", sp.parts["stakers"]),
        Payout(TREASURY, "unattributed", sp.parts["contributors"]),
    ]
    assert sp.pools == {}
    assert payouts_total(sp.payouts) == 1_001


def test_attribution_naming_an_unknown_contribution_is_refused() -> None:
    with pytest.raises(ValidationError, match="contribution #99") as exc:
        split_fee(
            1_000,
            DEFAULT,
            treasury=TREASURY,
            owner=OWNER,
            contributions=TRAINING,
            attribution={12: 500_000_000, 99: 100_000_000},
        )
    assert exc.value.field == "attribution" and exc.value.value == 99


def test_a_zero_fee_pays_nobody() -> None:
    sp = split_fee(
        0, DEFAULT, treasury=TREASURY, owner=OWNER, contributions=TRAINING, attribution={12: 10**9}
    )
    assert sp.parts == {"platform": 0, "owner": 0, "stakers": 0, "contributors": 0}
    assert sp.payouts == [] and sp.pools == {}


@pytest.mark.parametrize("bps", [(1_000, 2_000, 2_000, 4_999), (-1, 2_001, 3_000, 5_000)])
def test_a_fee_split_must_be_non_negative_and_sum_to_10000(bps: tuple[int, ...]) -> None:
    with pytest.raises(ValidationError, match="summing to 10000"):
        FeeSplit(*bps)


beneficiaries_st = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**22)), min_size=0, max_size=8
).map(
    lambda xs: tuple(
        Beneficiary(100 + i, 1 + i % 2, f"0x{i:040x}", records, stake)
        for i, (records, stake) in enumerate(xs)
    )
)
split_st = (
    st.lists(st.integers(0, 10_000), min_size=3, max_size=3)
    .map(sorted)
    .map(lambda c: FeeSplit(c[0], c[1] - c[0], c[2] - c[1], 10_000 - c[2]))
)


@settings(max_examples=200)
@given(st.integers(0, 10**24), split_st, beneficiaries_st, st.data())
def test_split_never_loses_or_creates_a_wei(
    amount: int, split: FeeSplit, contributions: tuple[Beneficiary, ...], data: st.DataObject
) -> None:
    ids = [c.contribution for c in contributions]
    attribution = (
        data.draw(st.dictionaries(st.sampled_from(ids), st.integers(0, WEIGHT_SCALE)))
        if ids
        else {}
    )
    sp = split_fee(
        amount,
        split,
        treasury=TREASURY,
        owner=OWNER,
        contributions=contributions,
        attribution=attribution,
    )
    parts, payouts = sp.parts, sp.payouts
    pooled = [
        p
        for _, p in divide_pools(
            {("0xs", r): v for r, v in sp.pools.items()}, {"0xs": contributions}
        )
    ]
    everything = payouts + pooled
    assert sum(parts.values()) == amount == payouts_total(everything)
    assert all(p.amount > 0 for p in everything)  # a weight too small to earn a wei is left out
    for role, part in (("platform", "platform"), ("owner", "owner"), ("staker", "stakers")):
        assert sum(p.amount for p in everything if p.role == role) == parts[part]
    assert (
        sum(p.amount for p in everything if p.role in ("contributor", "unattributed"))
        == parts["contributors"]
    )
    again = split_fee(
        amount,
        split,
        treasury=TREASURY,
        owner=OWNER,
        contributions=contributions,
        attribution=attribution,
    )
    assert again == sp


# --------------------------------------------------------------------------- weights_ppb


@given(
    st.dictionaries(
        st.integers(0, 10**6),
        st.floats(min_value=-1.0, max_value=1.0, allow_nan=False),
        max_size=40,
    )
)
def test_weights_ppb_never_sum_above_a_billion(weights: dict[int, float]) -> None:
    ppb = weights_ppb(weights)
    assert sum(ppb.values()) <= WEIGHT_SCALE
    assert all(v > 0 and weights[c] > 0 for c, v in ppb.items())


@given(st.lists(st.floats(min_value=1e-6, max_value=1.0), min_size=1, max_size=30))
def test_weights_ppb_normalised_weights_sum_to_at_most_a_billion(raw: list[float]) -> None:
    total = sum(raw)
    weights = {i: w / total for i, w in enumerate(raw)}  # what positive_shares returns
    ppb = weights_ppb(weights)
    assert WEIGHT_SCALE - len(raw) <= sum(ppb.values()) <= WEIGHT_SCALE


def test_weights_ppb_values() -> None:
    assert weights_ppb({1: 0.6, 2: 0.25, 3: 0.0, 4: -0.1}) == {1: 600_000_000, 2: 250_000_000}
    assert weights_ppb({1: 1.5, 2: 0.5}) == {1: 750_000_000, 2: 250_000_000}  # scaled to 1
    assert weights_ppb({1: 1e-10}) == {}  # below one part per billion
    assert weights_ppb({}) == {}
