"""DatanetRegistry: datanets, staked contributions, quorum reviews, slashing, snapshots."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import DAY, OPEN, ZERO, ZERO32, addr, events, h

PENDING, APPROVED, REJECTED = 0, 1, 2
STAKE = 100 * OPEN


@pytest.fixture
def datanet(datanets: Any, system: Any) -> int:
    """Datanet 1 owned by carol: 3 validators, quorum 2, own floor 20 OPEN."""
    with boa.env.prank(system.carol):
        return datanets.createDatanet("ipfs://datanet-1", system.validators, 2, 20 * OPEN)


def contribute(system: Any, who: str, datanet_id: int, stake: int = STAKE, label: str = "b") -> int:
    system.approve(who, system.datanets.address)
    with boa.env.prank(who):
        return system.datanets.contribute(datanet_id, h(label), 10, stake)


def review(system: Any, cid: int, approve: bool, *validator_ids: int) -> None:
    for i in validator_ids:
        with boa.env.prank(system.validators[i]):
            system.datanets.review(cid, approve)


# ---- datanets -----------------------------------------------------------------------------


def test_constructor_rejects_zero(factories: Any, system: Any) -> None:
    f = factories["DatanetRegistry"]
    dist = system.distributor.address
    with boa.reverts("DatanetRegistry: zero address"):
        f.deploy(ZERO, system.params.address, dist)
    with boa.reverts("DatanetRegistry: zero address"):
        f.deploy(system.token.address, ZERO, dist)
    with boa.reverts("DatanetRegistry: zero address"):
        f.deploy(system.token.address, system.params.address, ZERO)


def test_create_datanet(datanets: Any, system: Any) -> None:
    assert datanets.token() == system.token.address
    assert datanets.params() == system.params.address
    assert datanets.distributor() == system.distributor.address
    assert datanets.datanetCount() == 0
    with boa.env.prank(system.carol):
        did = datanets.createDatanet("ipfs://x", system.validators, 2, 5 * OPEN)
    (ev,) = events(datanets, "DatanetCreated")
    assert (ev.datanet_id, ev.owner, ev.metadata_uri, ev.quorum, ev.min_stake) == (
        1,
        system.carol,
        "ipfs://x",
        2,
        5 * OPEN,
    )
    assert did == 1 and datanets.datanetCount() == 1
    assert datanets.datanets(1) == (system.carol, "ipfs://x", 2, 5 * OPEN, 3, 0, boa.env.timestamp)
    assert datanets.getValidators(1) == system.validators
    for v in system.validators:
        assert datanets.isValidator(1, v)
    assert not datanets.isValidator(1, system.carol)
    assert not datanets.isValidator(2, system.validators[0])
    with boa.env.prank(system.alice):
        assert datanets.createDatanet("", [system.alice], 1, 0) == 2
    assert datanets.datanets(2)[0] == system.alice


def test_unknown_datanet_views_are_empty(datanets: Any) -> None:
    assert datanets.datanets(7) == (ZERO, "", 0, 0, 0, 0, 0)
    assert datanets.getValidators(7) == []
    assert datanets.snapshots(7, 1) == (ZERO32, 0, "", 0)
    assert datanets.contributions(7)[0] == 0


@pytest.mark.parametrize(("n_validators", "quorum"), [(3, 0), (3, 4), (0, 0), (0, 1), (1, 2)])
def test_create_datanet_invalid_quorum(
    datanets: Any, system: Any, n_validators: int, quorum: int
) -> None:
    with boa.env.prank(system.carol), boa.reverts("DatanetRegistry: invalid quorum"):
        datanets.createDatanet("u", system.validators[:n_validators], quorum, 0)


def test_create_datanet_bad_validators(datanets: Any, system: Any) -> None:
    v = system.validators
    with boa.env.prank(system.carol):
        with boa.reverts("DatanetRegistry: duplicate validator"):
            datanets.createDatanet("u", [v[0], v[1], v[0]], 2, 0)
        with boa.reverts("DatanetRegistry: zero validator"):
            datanets.createDatanet("u", [v[0], ZERO], 1, 0)
    assert datanets.datanetCount() == 0


def test_max_validators(datanets: Any, system: Any) -> None:
    many = [addr(f"v{i}") for i in range(32)]
    with boa.env.prank(system.carol):
        did = datanets.createDatanet("u", many, 32, 0)
    assert datanets.datanets(did)[4] == 32


# ---- contributions --------------------------------------------------------------------------


def test_contribute(datanets: Any, token: Any, system: Any, datanet: int) -> None:
    a = system.alice
    system.approve(a, datanets.address, STAKE)
    before = token.balanceOf(a)
    with boa.env.prank(a):
        cid = datanets.contribute(datanet, h("batch"), 10, STAKE)
    (ev,) = events(datanets, "ContributionSubmitted")
    assert (ev.contribution_id, ev.datanet_id, ev.contributor) == (1, datanet, a)
    assert (ev.root, ev.record_count, ev.stake) == (h("batch"), 10, STAKE)
    assert cid == 1 and datanets.contributionCount() == 1
    assert token.balanceOf(a) == before - STAKE
    assert token.balanceOf(datanets.address) == STAKE
    assert token.allowance(a, datanets.address) == 0
    assert datanets.contributions(cid) == (
        datanet,
        a,
        h("batch"),
        10,
        STAKE,
        PENDING,
        0,
        0,
        0,
        0,
        0,
        False,
    )


def test_contribute_reverts(datanets: Any, system: Any, datanet: int) -> None:
    a = system.alice
    with boa.env.prank(a):
        with boa.reverts("DatanetRegistry: unknown datanet"):
            datanets.contribute(0, h("r"), 1, STAKE)
        with boa.reverts("DatanetRegistry: unknown datanet"):
            datanets.contribute(datanet + 1, h("r"), 1, STAKE)
        with boa.reverts("DatanetRegistry: empty root"):
            datanets.contribute(datanet, ZERO32, 1, STAKE)
        with boa.reverts("DatanetRegistry: no records"):
            datanets.contribute(datanet, h("r"), 0, STAKE)
        # the datanet's own floor (20 OPEN) is above the protocol floor (10 OPEN)
        with boa.reverts("DatanetRegistry: stake below minimum"):
            datanets.contribute(datanet, h("r"), 1, 20 * OPEN - 1)
        # no allowance yet: the token's transferFrom refuses
        with boa.reverts("OpenToken: insufficient allowance"):
            datanets.contribute(datanet, h("r"), 1, 20 * OPEN)


def test_contribute_protocol_floor_applies(datanets: Any, system: Any) -> None:
    with boa.env.prank(system.carol):
        did = datanets.createDatanet("u", system.validators, 1, 0)
    system.approve(system.alice, datanets.address)
    with boa.env.prank(system.alice):
        with boa.reverts("DatanetRegistry: stake below minimum"):
            datanets.contribute(did, h("r"), 1, 10 * OPEN - 1)
        datanets.contribute(did, h("r"), 1, 10 * OPEN)
    with boa.env.prank(system.deployer):
        system.params.setParam("min_stake", 50 * OPEN)
    with boa.env.prank(system.alice), boa.reverts("DatanetRegistry: stake below minimum"):
        datanets.contribute(did, h("r"), 1, 49 * OPEN)


def test_contribute_short_balance(datanets: Any, system: Any, datanet: int) -> None:
    poor = addr("poor")
    system.fund(poor, 20 * OPEN)
    system.approve(poor, datanets.address)
    with boa.env.prank(poor), boa.reverts("OpenToken: transfer amount exceeds balance"):
        datanets.contribute(datanet, h("r"), 1, 21 * OPEN)


# ---- reviews --------------------------------------------------------------------------------


def test_approval_reaches_quorum(datanets: Any, system: Any, datanet: int) -> None:
    cid = contribute(system, system.alice, datanet)
    with boa.env.prank(system.validators[0]):
        datanets.review(cid, True)
    (ev,) = events(datanets, "ContributionReviewed")
    assert (ev.contribution_id, ev.validator, ev.approve) == (cid, system.validators[0], True)
    assert datanets.hasReviewed(cid, system.validators[0])
    assert datanets.contributions(cid)[5:8] == (PENDING, 1, 0)
    boa.env.time_travel(seconds=60)
    with boa.env.prank(system.validators[2]):
        datanets.review(cid, True)
    (dec,) = events(datanets, "ContributionDecided")
    assert (dec.contribution_id, dec.approved, dec.slashed) == (cid, True, 0)
    now = boa.env.timestamp
    c = datanets.contributions(cid)
    assert c[5:] == (APPROVED, 2, 0, now, now + 7 * DAY, 0, False)


def test_rejection_slashes_to_treasury(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    cid = contribute(system, system.alice, datanet)
    treasury_before = token.balanceOf(system.treasury)
    review(system, cid, False, 0)
    review(system, cid, True, 1)  # mixed reviews: one approval does not stop a rejection
    with boa.env.prank(system.validators[2]):
        datanets.review(cid, False)
    (dec,) = events(datanets, "ContributionDecided")
    assert (dec.contribution_id, dec.approved, dec.slashed) == (cid, False, STAKE // 2)
    now = boa.env.timestamp
    assert datanets.contributions(cid)[5:] == (REJECTED, 1, 2, now, now, STAKE // 2, False)
    assert token.balanceOf(system.treasury) == treasury_before + STAKE // 2
    assert token.balanceOf(datanets.address) == STAKE - STAKE // 2


def test_review_reverts(datanets: Any, system: Any, datanet: int) -> None:
    cid = contribute(system, system.alice, datanet)
    v0, v1 = system.validators[0], system.validators[1]
    with boa.env.prank(v0), boa.reverts("DatanetRegistry: unknown contribution"):
        datanets.review(cid + 1, True)
    with boa.env.prank(system.carol), boa.reverts("DatanetRegistry: not a validator"):
        datanets.review(cid, True)  # the datanet owner is not a validator
    with boa.env.prank(v0):
        datanets.review(cid, True)
        with boa.reverts("DatanetRegistry: already reviewed"):
            datanets.review(cid, True)
        with boa.reverts("DatanetRegistry: already reviewed"):
            datanets.review(cid, False)
    with boa.env.prank(v1):
        datanets.review(cid, True)  # approved now
    with boa.env.prank(system.validators[2]), boa.reverts("DatanetRegistry: not pending"):
        datanets.review(cid, False)


def test_validator_of_another_datanet_cannot_review(
    datanets: Any, system: Any, datanet: int
) -> None:
    outsider = addr("outsider")
    with boa.env.prank(system.carol):
        datanets.createDatanet("other", [outsider], 1, 0)
    cid = contribute(system, system.alice, datanet)
    with boa.env.prank(outsider), boa.reverts("DatanetRegistry: not a validator"):
        datanets.review(cid, True)


def test_slash_rate_is_read_at_decision(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    cid = contribute(system, system.alice, datanet, stake=33 * OPEN + 7)
    with boa.env.prank(system.deployer):
        system.params.setParam("slash_bps", 2500)
    review(system, cid, False, 0, 1)
    slashed = (33 * OPEN + 7) * 2500 // 10_000
    assert datanets.contributions(cid)[10] == slashed
    assert token.balanceOf(datanets.address) == 33 * OPEN + 7 - slashed


def test_zero_slash_rate(datanets: Any, token: Any, system: Any, datanet: int) -> None:
    with boa.env.prank(system.deployer):
        system.params.setParam("slash_bps", 0)
    cid = contribute(system, system.alice, datanet)
    before = token.balanceOf(system.treasury)
    review(system, cid, False, 0, 1)
    assert datanets.contributions(cid)[10] == 0
    assert token.balanceOf(system.treasury) == before
    with boa.env.prank(system.alice):
        datanets.withdrawStake(cid)
    assert token.balanceOf(datanets.address) == 0


# ---- stake withdrawal -----------------------------------------------------------------------


def test_withdraw_approved_after_unlock(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    a = system.alice
    cid = contribute(system, a, datanet)
    review(system, cid, True, 0, 1)
    unlock_at = datanets.contributions(cid)[9]
    boa.env.time_travel(seconds=7 * DAY - 1)
    with boa.env.prank(a), boa.reverts("DatanetRegistry: stake locked"):
        datanets.withdrawStake(cid)
    boa.env.time_travel(seconds=1)
    assert boa.env.timestamp == unlock_at
    before = token.balanceOf(a)
    with boa.env.prank(a):
        datanets.withdrawStake(cid)
    (ev,) = events(datanets, "StakeWithdrawn")
    assert (ev.contribution_id, ev.contributor, ev.amount) == (cid, a, STAKE)
    assert token.balanceOf(a) == before + STAKE
    assert datanets.contributions(cid)[11] is True
    with boa.env.prank(a), boa.reverts("DatanetRegistry: already withdrawn"):
        datanets.withdrawStake(cid)


def test_withdraw_rejected_remainder_at_once(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    a = system.alice
    cid = contribute(system, a, datanet)
    review(system, cid, False, 0, 1)
    before = token.balanceOf(a)
    with boa.env.prank(a):
        datanets.withdrawStake(cid)
    assert token.balanceOf(a) == before + STAKE - STAKE // 2
    assert token.balanceOf(datanets.address) == 0
    with boa.env.prank(a), boa.reverts("DatanetRegistry: already withdrawn"):
        datanets.withdrawStake(cid)


def test_withdraw_reverts(datanets: Any, system: Any, datanet: int) -> None:
    a = system.alice
    cid = contribute(system, a, datanet)
    with boa.env.prank(a), boa.reverts("DatanetRegistry: unknown contribution"):
        datanets.withdrawStake(cid + 1)
    with boa.env.prank(system.bob), boa.reverts("DatanetRegistry: not the contributor"):
        datanets.withdrawStake(cid)
    with boa.env.prank(a), boa.reverts("DatanetRegistry: not decided"):
        datanets.withdrawStake(cid)
    review(system, cid, True, 0)
    with boa.env.prank(a), boa.reverts("DatanetRegistry: not decided"):
        datanets.withdrawStake(cid)


def test_fully_slashed_stake_is_not_withdrawable(
    datanets: Any, token: Any, system: Any, datanet: int
) -> None:
    with boa.env.prank(system.deployer):
        system.params.setParam("slash_bps", 10_000)
    cid = contribute(system, system.alice, datanet)
    review(system, cid, False, 0, 1)
    assert datanets.contributions(cid)[10] == STAKE
    with boa.env.prank(system.alice), boa.reverts("DatanetRegistry: nothing to withdraw"):
        datanets.withdrawStake(cid)
    assert token.balanceOf(datanets.address) == 0


# ---- snapshots ------------------------------------------------------------------------------


def test_commit_snapshot(datanets: Any, system: Any, datanet: int) -> None:
    with boa.env.prank(system.carol):
        v1 = datanets.commitSnapshot(datanet, h("s1"), 100, "ipfs://s1")
    (ev,) = events(datanets, "SnapshotCommitted")
    assert (ev.datanet_id, ev.version, ev.root, ev.record_count, ev.uri) == (
        datanet,
        1,
        h("s1"),
        100,
        "ipfs://s1",
    )
    t1 = boa.env.timestamp
    boa.env.time_travel(seconds=5)
    with boa.env.prank(system.carol):
        v2 = datanets.commitSnapshot(datanet, h("s2"), 150, "ipfs://s2")
    assert (v1, v2) == (1, 2)
    assert datanets.snapshots(datanet, 1) == (h("s1"), 100, "ipfs://s1", t1)
    assert datanets.snapshots(datanet, 2) == (h("s2"), 150, "ipfs://s2", t1 + 5)
    assert datanets.datanets(datanet)[5] == 2


def test_commit_snapshot_reverts(datanets: Any, system: Any, datanet: int) -> None:
    with boa.env.prank(system.carol):
        with boa.reverts("DatanetRegistry: unknown datanet"):
            datanets.commitSnapshot(0, h("s"), 1, "u")
        with boa.reverts("DatanetRegistry: unknown datanet"):
            datanets.commitSnapshot(datanet + 1, h("s"), 1, "u")
        with boa.reverts("DatanetRegistry: empty root"):
            datanets.commitSnapshot(datanet, ZERO32, 1, "u")
    for who in (system.alice, system.validators[0]):
        with boa.env.prank(who), boa.reverts("DatanetRegistry: not the datanet owner"):
            datanets.commitSnapshot(datanet, h("s"), 1, "u")


def test_token_returning_false(factories: Any, false_token: Any, system: Any) -> None:
    with boa.env.prank(addr("false-token-registry-deployer")):  # a fresh address for it
        reg = factories["DatanetRegistry"].deploy(
            false_token.address, system.params.address, system.distributor.address
        )
    a = system.alice
    false_token.mint(a, 1_000 * OPEN)
    with boa.env.prank(system.carol):
        did = reg.createDatanet("u", system.validators, 1, 0)
    false_token.set_fail(True)
    with boa.env.prank(a), boa.reverts("DatanetRegistry: transfer failed"):
        reg.contribute(did, h("r"), 1, STAKE)
    false_token.set_fail(False)
    with boa.env.prank(a):
        rejected = reg.contribute(did, h("r"), 1, STAKE)
        approved = reg.contribute(did, h("s"), 1, STAKE)
    false_token.set_fail(True)
    with boa.env.prank(system.validators[0]), boa.reverts("DatanetRegistry: transfer failed"):
        reg.review(rejected, False)  # the slash cannot be paid to the treasury
    with boa.env.prank(system.validators[0]):
        reg.review(approved, True)
    boa.env.time_travel(seconds=7 * DAY)
    with boa.env.prank(a), boa.reverts("DatanetRegistry: transfer failed"):
        reg.withdrawStake(approved)
    assert reg.contributions(approved)[11] is False
