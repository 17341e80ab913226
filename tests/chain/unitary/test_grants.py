"""Grants (OpenCircle): every external function and revert (titanoboa)."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import OPEN, ZERO, System, addr, events
from .governance_helpers import Gov, calldata, deploy_gov

K = 1_000 * OPEN  # at the default $1.00 per OPEN, $1,000 = 1,000 OPEN
PENDING, APPROVED, COMPLETED, CANCELLED = range(4)


@pytest.fixture
def gov(factories: dict[str, Any], system: System) -> Gov:
    g = deploy_gov(factories, system)
    system.fund(g.timelock.address, 1_000 * K)  # the treasury's opening balance
    return g


def apply(
    g: Gov, who: str, tier: int = 0, amount: int = 30 * K, milestones: list[int] | None = None
) -> int:
    with boa.env.prank(who):
        return g.grants.apply(tier, amount, milestones or [10 * K, 20 * K], "ipfs://plan")


def approve_calls(g: Gov, gid: int, amount: int) -> list[tuple[Any, bytes]]:
    token = g.system.token
    return [
        (token, calldata(token, "approve", g.grants.address, amount)),
        (g.grants, calldata(g.grants, "approve", gid)),
    ]


def test_defaults(gov: Gov) -> None:
    assert gov.grants.reference_price() == 10**6
    assert [gov.grants.tierBounds(t) for t in range(3)] == [
        (25 * K, 50 * K),
        (50 * K, 150 * K),
        (250 * K, 500 * K),
    ]
    with boa.reverts("Grants: unknown tier"):
        gov.grants.tierBounds(3)
    assert gov.grants.committee() == ZERO and gov.grants.escrowed() == 0


def test_constructor_rejects_zero(factories: Any, system: System) -> None:
    with boa.reverts("Grants: zero address"):
        factories["Grants"].deploy(ZERO, system.params.address)
    with boa.reverts("Grants: zero address"):
        factories["Grants"].deploy(system.token.address, ZERO)


def test_apply_records_the_application(gov: Gov, system: System) -> None:
    gid = apply(gov, system.alice)
    ev = events(gov.grants, "GrantApplied")[0]
    assert (ev.grant_id, ev.applicant, ev.tier, ev.amount, ev.milestones, ev.metadata_uri) == (
        1,
        system.alice,
        0,
        30 * K,
        [10 * K, 20 * K],
        "ipfs://plan",
    )
    g = gov.grants.grants(gid)
    assert (g.applicant, g.tier, g.amount, g.released, g.next_milestone, g.status) == (
        system.alice,
        0,
        30 * K,
        0,
        0,
        PENDING,
    )
    assert gov.grants.milestones(gid) == [10 * K, 20 * K]
    assert gov.grants.grant_count() == 1


@pytest.mark.parametrize(
    "tier,amount,milestones,reason",
    [
        (3, 30 * K, [30 * K], "Grants: unknown tier"),
        (0, 25 * K - 1, [25 * K - 1], "Grants: amount outside the tier's bounds"),
        (0, 50 * K + 1, [50 * K + 1], "Grants: amount outside the tier's bounds"),
        (2, 200 * K, [200 * K], "Grants: amount outside the tier's bounds"),
        (0, 30 * K, [], "Grants: no milestones"),
        (0, 30 * K, [30 * K, 0], "Grants: zero milestone"),
        (0, 30 * K, [10 * K, 10 * K], "Grants: milestones do not sum to the amount"),
    ],
)
def test_apply_reverts(
    gov: Gov, system: System, tier: int, amount: int, milestones: list[int], reason: str
) -> None:
    with boa.env.prank(system.alice), boa.reverts(reason):
        gov.grants.apply(tier, amount, milestones, "")


def test_approve_through_a_proposal_escrows_from_the_treasury(gov: Gov, system: System) -> None:
    gid = apply(gov, system.alice)
    with boa.env.prank(system.deployer), boa.reverts("Grants: caller is not the owner"):
        gov.grants.approve(gid)
    tl_before = system.token.balanceOf(gov.timelock.address)
    gov.pass_and_execute(approve_calls(gov, gid, 30 * K))
    assert gov.grants.grants(gid).status == APPROVED
    assert gov.grants.escrowed() == 30 * K
    assert system.token.balanceOf(gov.grants.address) == 30 * K
    assert system.token.balanceOf(gov.timelock.address) == tl_before - 30 * K


def test_approve_reverts(gov: Gov, system: System) -> None:
    gid = apply(gov, system.alice)
    with boa.env.prank(gov.timelock.address):
        with boa.reverts("Grants: unknown grant"):
            gov.grants.approve(9)
        with boa.reverts("OpenToken: insufficient allowance"):
            gov.grants.approve(gid)  # the treasury did not approve the amount
        system.token.approve(gov.grants.address, 30 * K)
        gov.grants.approve(gid)
        assert events(gov.grants, "GrantApproved")[0].amount == 30 * K
        with boa.reverts("Grants: not pending"):
            gov.grants.approve(gid)


def test_treasury_cannot_pay_more_than_it_holds(gov: Gov, system: System) -> None:
    gid = apply(gov, system.alice, tier=2, amount=300 * K, milestones=[300 * K])
    with boa.env.prank(gov.timelock.address):
        system.token.transfer(system.bob, system.token.balanceOf(gov.timelock.address) - K)
        system.token.approve(gov.grants.address, 300 * K)
        with boa.reverts("OpenToken: transfer amount exceeds balance"):
            gov.grants.approve(gid)


def test_release_milestones_one_by_one(gov: Gov, system: System) -> None:
    gid = apply(gov, system.alice)
    committee = addr("committee")
    with boa.env.prank(committee), boa.reverts("Grants: caller is not the owner or committee"):
        gov.grants.release(gid)
    with boa.env.prank(gov.timelock.address):
        gov.grants.setCommittee(committee)
        assert events(gov.grants, "CommitteeChanged")[0].new == committee
        with boa.reverts("Grants: not approved"):
            gov.grants.release(gid)
        system.token.approve(gov.grants.address, 30 * K)
        gov.grants.approve(gid)
    before = system.token.balanceOf(system.alice)
    with boa.env.prank(committee):
        gov.grants.release(gid)
        ev = events(gov.grants, "MilestoneReleased")[0]
        assert (ev.grant_id, ev.milestone, ev.amount, ev.applicant) == (
            gid,
            0,
            10 * K,
            system.alice,
        )
        g = gov.grants.grants(gid)
        assert (g.released, g.next_milestone, g.status) == (10 * K, 1, APPROVED)
    with boa.env.prank(gov.timelock.address):
        gov.grants.release(gid)
    g = gov.grants.grants(gid)
    assert (g.released, g.next_milestone, g.status) == (30 * K, 2, COMPLETED)
    assert system.token.balanceOf(system.alice) == before + 30 * K
    assert gov.grants.escrowed() == 0
    with boa.env.prank(committee), boa.reverts("Grants: not approved"):
        gov.grants.release(gid)
    with boa.env.prank(committee), boa.reverts("Grants: already closed"):
        gov.grants.cancel(gid)


def test_cancel_returns_the_unreleased_rest_to_the_treasury(gov: Gov, system: System) -> None:
    gid = apply(gov, system.alice)
    with boa.env.prank(gov.timelock.address):
        system.token.approve(gov.grants.address, 30 * K)
        gov.grants.approve(gid)
        gov.grants.release(gid)
    tl_before = system.token.balanceOf(gov.timelock.address)
    with boa.env.prank(system.alice), boa.reverts("Grants: caller is not the owner or committee"):
        gov.grants.cancel(gid)  # the applicant cannot cancel an approved grant
    gov.pass_and_execute([(gov.grants, calldata(gov.grants, "cancel", gid))])
    assert gov.grants.grants(gid).status == CANCELLED
    assert system.token.balanceOf(gov.timelock.address) == tl_before + 20 * K
    assert gov.grants.escrowed() == 0 and system.token.balanceOf(gov.grants.address) == 0


def test_cancel_pending(gov: Gov, system: System) -> None:
    a, b = apply(gov, system.alice), apply(gov, system.bob)
    with boa.reverts("Grants: unknown grant"):
        gov.grants.cancel(9)
    with boa.env.prank(system.bob), boa.reverts("Grants: caller is not the owner or committee"):
        gov.grants.cancel(a)
    with boa.env.prank(system.alice):
        gov.grants.cancel(a)  # the applicant withdraws its application
        assert events(gov.grants, "GrantCancelled")[0].returned == 0
    with boa.env.prank(gov.timelock.address):
        gov.grants.cancel(b)
        with boa.reverts("Grants: not pending"):
            gov.grants.approve(a)
    assert gov.grants.grants(a).status == CANCELLED == gov.grants.grants(b).status


def test_governable_tiers_price_and_committee(gov: Gov, system: System) -> None:
    with boa.env.prank(system.deployer):
        with boa.reverts("Grants: caller is not the owner"):
            gov.grants.setTier(0, 1, 2)
        with boa.reverts("Grants: caller is not the owner"):
            gov.grants.setReferencePrice(1)
        with boa.reverts("Grants: caller is not the owner"):
            gov.grants.setCommittee(system.bob)
        with boa.reverts("Grants: caller is not the owner"):
            gov.grants.transfer_ownership(system.bob)
    gov.pass_and_execute([(gov.grants, calldata(gov.grants, "setReferencePrice", 500_000))])
    assert gov.grants.tierBounds(0) == (50 * K, 100 * K)  # $0.50 per OPEN: twice the OPEN
    with boa.env.prank(gov.timelock.address):
        gov.grants.setTier(1, 10 * 10**6, 20 * 10**6)
        ev = events(gov.grants, "TierChanged")[0]
        assert (ev.tier, ev.min_usd, ev.max_usd) == (1, 10 * 10**6, 20 * 10**6)
        assert gov.grants.tierBounds(1) == (20 * OPEN, 40 * OPEN)
        with boa.reverts("Grants: unknown tier"):
            gov.grants.setTier(3, 1, 2)
        with boa.reverts("Grants: invalid bounds"):
            gov.grants.setTier(0, 0, 2)
        with boa.reverts("Grants: invalid bounds"):
            gov.grants.setTier(0, 3, 2)
        with boa.reverts("Grants: invalid bounds"):
            gov.grants.setTier(0, 1, 2**128)
        with boa.reverts("Grants: zero price"):
            gov.grants.setReferencePrice(0)
        with boa.reverts("Grants: new owner is the zero address"):
            gov.grants.transfer_ownership(ZERO)
        gov.grants.transfer_ownership(system.bob)
    assert gov.grants.owner() == system.bob
