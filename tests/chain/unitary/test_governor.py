"""Governor: every external function and revert (titanoboa)."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import DAY, OPEN, SUPPLY, ZERO, System, addr, events
from .governance_helpers import (
    ABSTAIN,
    ACTIVE,
    AGAINST,
    CANCELED,
    DEFEATED,
    EXECUTED,
    FOR,
    PENDING,
    QUEUED,
    QUORUM_BPS,
    QUORUM_VOTES,
    SUCCEEDED,
    THRESHOLD,
    TL_DELAY,
    VOTING_DELAY,
    VOTING_PERIOD,
    Gov,
    calldata,
    deploy_gov,
)


@pytest.fixture
def gov(factories: dict[str, Any], system: System) -> Gov:
    return deploy_gov(factories, system)


def split_call(g: Gov, *split: int) -> tuple[Any, bytes]:
    return (g.system.params, calldata(g.system.params, "setFeeSplit", *split))


def test_constructor_settings(gov: Gov, system: System) -> None:
    g = gov.governor
    assert g.token() == system.token.address
    assert g.timelock() == gov.timelock.address
    assert (g.voting_delay(), g.voting_period(), g.proposal_threshold(), g.quorum_bps()) == (
        VOTING_DELAY,
        VOTING_PERIOD,
        THRESHOLD,
        QUORUM_BPS,
    )
    assert g.guardian() == ZERO
    assert g.proposal_count() == 0


@pytest.mark.parametrize(
    "args,reason",
    [
        ((ZERO, 1, 1, 1, 400), "Governor: zero address"),
        (("token", 1, 0, 1, 400), "Governor: voting period is zero"),
        (("token", 1, 1, 1, 0), "Governor: quorum out of range"),
        (("token", 1, 1, 1, 10_001), "Governor: quorum out of range"),
    ],
)
def test_constructor_reverts(factories: Any, system: System, args: tuple, reason: str) -> None:
    args = (system.token.address if args[0] == "token" else args[0], *args[1:])
    with boa.reverts(reason):
        factories["Governor"].deploy(*args)


def test_init_timelock_once_by_deployer(factories: Any, system: System) -> None:
    tl, tl2 = addr("tl"), addr("tl2")
    with boa.env.prank(system.deployer):
        g = factories["Governor"].deploy(system.token.address, 1, 10, 0, 400)
    with boa.env.prank(system.alice), boa.reverts("Governor: caller is not the deployer"):
        g.initTimelock(tl)
    with boa.env.prank(system.deployer):
        with boa.reverts("Governor: zero address"):
            g.initTimelock(ZERO)
        with boa.reverts("Governor: timelock not set"):
            g.propose([system.params.address], [0], [b""], "x")
        g.initTimelock(tl)
        assert events(g, "TimelockSet")[0].timelock == tl
        with boa.reverts("Governor: caller is not the deployer"):  # the deployer is forgotten
            g.initTimelock(tl2)


def test_propose_records_everything(gov: Gov, system: System) -> None:
    call = split_call(gov, 500, 1500, 3000, 5000)
    now = boa.env.timestamp
    pid = gov.propose([call], description="halve the platform share")
    ev = events(gov.governor, "ProposalCreated")[0]
    assert pid == 1 and gov.governor.proposal_count() == 1
    assert (ev.proposal_id, ev.proposer, ev.snapshot, ev.deadline) == (
        1,
        gov.whale,
        now + VOTING_DELAY,
        now + VOTING_DELAY + VOTING_PERIOD,
    )
    assert ev.description == "halve the platform share"
    p = gov.governor.proposals(pid)
    assert (p.proposer, p.snapshot, p.quorum_bps, p.eta, p.canceled, p.executed) == (
        gov.whale,
        now + VOTING_DELAY,
        QUORUM_BPS,
        0,
        False,
        False,
    )
    targets, values, datas = gov.governor.getActions(pid)
    assert (targets, values, datas) == ([system.params.address], [0], [call[1]])
    assert gov.governor.description(pid) == "halve the platform share"
    assert gov.governor.state(pid) == PENDING


@pytest.mark.parametrize(
    "shape,reason",
    [
        ((0, 0, 0), "Governor: empty proposal"),
        ((1, 2, 1), "Governor: length mismatch"),
        ((1, 1, 0), "Governor: length mismatch"),
    ],
)
def test_propose_shape_reverts(gov: Gov, system: System, shape: tuple, reason: str) -> None:
    n_t, n_v, n_c = shape
    with boa.env.prank(gov.whale), boa.reverts(reason):
        gov.governor.propose([system.params.address] * n_t, [0] * n_v, [b"\x00"] * n_c, "x")


def test_propose_needs_threshold_votes_a_second_before(gov: Gov, system: System) -> None:
    with boa.reverts("Governor: votes below proposal threshold"):
        gov.propose([split_call(gov, 1000, 2000, 2000, 5000)], who=system.alice)
    with boa.env.prank(system.alice):
        system.token.delegate(system.alice)  # 1,000,000 OPEN >= threshold, but only from now
        with boa.reverts("Governor: votes below proposal threshold"):
            gov.governor.propose([system.params.address], [0], [b""], "x")
    boa.env.time_travel(seconds=1)
    assert gov.propose([split_call(gov, 1000, 2000, 2000, 5000)], who=system.alice) == 1


def test_vote_counts_snapshot_votes_once(gov: Gov, system: System) -> None:
    pid = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)])
    with boa.env.prank(gov.whale), boa.reverts("Governor: voting is not active"):
        gov.governor.castVote(pid, FOR)
    boa.env.time_travel(seconds=VOTING_DELAY)  # at the snapshot: still pending
    assert gov.governor.state(pid) == PENDING
    boa.env.time_travel(seconds=1)
    assert gov.governor.state(pid) == ACTIVE
    with boa.env.prank(gov.whale):
        with boa.reverts("Governor: invalid vote type"):
            gov.governor.castVote(pid, 3)
        assert gov.governor.castVote(pid, FOR) == QUORUM_VOTES
        ev = events(gov.governor, "VoteCast")[0]
        assert (ev.voter, ev.proposal_id, ev.support, ev.weight) == (
            gov.whale,
            pid,
            FOR,
            QUORUM_VOTES,
        )
        with boa.reverts("Governor: already voted"):
            gov.governor.castVote(pid, AGAINST)
    assert gov.governor.hasVoted(pid, gov.whale)
    with boa.env.prank(system.alice), boa.reverts("Governor: no votes at the snapshot"):
        gov.governor.castVote(pid, AGAINST)
    assert gov.governor.proposalVotes(pid) == (0, QUORUM_VOTES, 0)
    boa.env.time_travel(seconds=VOTING_PERIOD - 1)  # the deadline itself still votes
    assert gov.governor.state(pid) == ACTIVE
    boa.env.time_travel(seconds=1)
    assert gov.governor.state(pid) == SUCCEEDED
    with boa.env.prank(system.bob), boa.reverts("Governor: voting is not active"):
        gov.governor.castVote(pid, FOR)


def test_against_majority_or_missing_quorum_defeats(gov: Gov, system: System) -> None:
    for who in (system.alice, system.bob):
        with boa.env.prank(who):
            system.token.delegate(who)
    boa.env.time_travel(seconds=1)
    a = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)])
    b = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)], who=system.alice)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale):
        gov.governor.castVote(a, AGAINST)
    with boa.env.prank(system.alice):  # for > against but 1M OPEN < 4 % quorum
        gov.governor.castVote(a, FOR)
        gov.governor.castVote(b, FOR)
    with boa.env.prank(system.bob):
        gov.governor.castVote(b, ABSTAIN)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.governor.state(a) == DEFEATED
    assert gov.governor.state(b) == DEFEATED
    assert gov.governor.proposalVotes(b) == (0, 1_000_000 * OPEN, 1_000_000 * OPEN)
    with boa.reverts("Governor: proposal not successful"):
        gov.governor.queue(a)


def test_abstain_counts_towards_quorum(gov: Gov, system: System) -> None:
    with boa.env.prank(system.alice):
        system.token.delegate(system.alice)
    boa.env.time_travel(seconds=1)
    pid = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)])
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale):
        gov.governor.castVote(pid, ABSTAIN)
    with boa.env.prank(system.alice):
        gov.governor.castVote(pid, FOR)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    assert gov.governor.state(pid) == SUCCEEDED


def test_queue_and_execute_after_the_delay(gov: Gov, system: System) -> None:
    pid = gov.propose([split_call(gov, 500, 1500, 3000, 5000)])
    with boa.reverts("Governor: proposal not queued"):
        gov.governor.execute(pid)
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale):
        gov.governor.castVote(pid, FOR)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    eta = gov.governor.queue(pid)
    assert eta == boa.env.timestamp + TL_DELAY
    assert events(gov.governor, "ProposalQueued")[0].eta == eta
    assert gov.governor.state(pid) == QUEUED and gov.governor.proposals(pid).eta == eta
    with boa.reverts("Governor: proposal not successful"):
        gov.governor.queue(pid)
    boa.env.time_travel(seconds=TL_DELAY - 1)
    with boa.reverts("timelock_controller: operation is not ready"):
        gov.governor.execute(pid)
    boa.env.time_travel(seconds=1)
    gov.governor.execute(pid)
    assert events(gov.governor, "ProposalExecuted")[0].proposal_id == pid
    assert gov.governor.state(pid) == EXECUTED
    p = system.params
    assert (p.platform_bps(), p.owner_bps(), p.stakers_bps(), p.contributors_bps()) == (
        500,
        1500,
        3000,
        5000,
    )
    assert gov.timelock.is_operation_done(gov.governor.operationId(pid))
    with boa.reverts("Governor: proposal not queued"):
        gov.governor.execute(pid)


def test_anyone_may_execute_on_the_timelock_directly(gov: Gov, system: System) -> None:
    call = split_call(gov, 500, 1500, 3000, 5000)
    pid = gov.propose([call])
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale):
        gov.governor.castVote(pid, FOR)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    gov.governor.queue(pid)
    boa.env.time_travel(seconds=TL_DELAY)
    with boa.env.prank(system.carol):
        gov.timelock.execute_batch(
            [system.params.address], [0], [call[1]], b"\x00" * 32, pid.to_bytes(32, "big")
        )
    assert gov.governor.state(pid) == EXECUTED
    assert system.params.platform_bps() == 500


def test_cancel_rules(gov: Gov, system: System) -> None:
    pid = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)])
    with boa.env.prank(system.alice), boa.reverts("Governor: caller cannot cancel"):
        gov.governor.cancel(pid)
    with boa.env.prank(gov.whale):
        gov.governor.cancel(pid)
    assert events(gov.governor, "ProposalCanceled")[0].proposal_id == pid
    assert gov.governor.state(pid) == CANCELED
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale), boa.reverts("Governor: voting is not active"):
        gov.governor.castVote(pid, FOR)
    # once voting started, the proposer can no longer cancel
    other = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)])
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale), boa.reverts("Governor: caller cannot cancel"):
        gov.governor.cancel(other)


def test_guardian_cancels_a_queued_proposal_in_the_timelock(gov: Gov, system: System) -> None:
    guardian = addr("guardian")
    gov.pass_and_execute([(gov.governor, calldata(gov.governor, "setGuardian", guardian))])
    assert gov.governor.guardian() == guardian
    pid = gov.propose([split_call(gov, 0, 0, 0, 10_000)])
    boa.env.time_travel(seconds=VOTING_DELAY + 1)
    with boa.env.prank(gov.whale):
        gov.governor.castVote(pid, FOR)
    boa.env.time_travel(seconds=VOTING_PERIOD)
    gov.governor.queue(pid)
    op = gov.governor.operationId(pid)
    with boa.env.prank(guardian):
        gov.governor.cancel(pid)
        with boa.reverts("Governor: proposal already final"):
            gov.governor.cancel(pid)
    assert gov.governor.state(pid) == CANCELED and not gov.timelock.is_operation(op)
    boa.env.time_travel(seconds=TL_DELAY)
    with boa.reverts("Governor: proposal not queued"):
        gov.governor.execute(pid)
    assert system.params.platform_bps() == 1000


def test_unknown_proposal(gov: Gov) -> None:
    with boa.reverts("Governor: unknown proposal"):
        gov.governor.state(7)
    assert gov.governor.proposalVotes(7) == (0, 0, 0)


def test_quorum_view(gov: Gov) -> None:
    assert gov.governor.quorum(boa.env.timestamp - 1) == SUPPLY * QUORUM_BPS // 10_000


@pytest.mark.parametrize(
    "fn,value,getter",
    [
        ("setVotingDelay", 2 * DAY, "voting_delay"),
        ("setVotingPeriod", 7 * DAY, "voting_period"),
        ("setProposalThreshold", 5 * OPEN, "proposal_threshold"),
        ("setQuorumBps", 1000, "quorum_bps"),
    ],
)
def test_settings_change_only_through_governance(
    gov: Gov, system: System, fn: str, value: int, getter: str
) -> None:
    with boa.env.prank(system.deployer), boa.reverts("Governor: caller is not the timelock"):
        getattr(gov.governor, fn)(value)
    gov.pass_and_execute([(gov.governor, calldata(gov.governor, fn, value))])
    assert getattr(gov.governor, getter)() == value
    with boa.env.prank(gov.timelock.address):
        getattr(gov.governor, fn)(value + 1)
    ev = events(gov.governor, "SettingChanged")[0]
    assert (ev.name, ev.old_value, ev.new_value) == (getter, value, value + 1)


def test_setting_bounds(gov: Gov) -> None:
    with boa.env.prank(gov.timelock.address):
        with boa.reverts("Governor: voting period is zero"):
            gov.governor.setVotingPeriod(0)
        with boa.reverts("Governor: quorum out of range"):
            gov.governor.setQuorumBps(0)
        with boa.reverts("Governor: quorum out of range"):
            gov.governor.setQuorumBps(10_001)
        gov.governor.setGuardian(addr("g"))
    with boa.reverts("Governor: caller is not the timelock"):
        gov.governor.setGuardian(ZERO)


def test_new_quorum_applies_to_new_proposals_only(gov: Gov, system: System) -> None:
    with boa.env.prank(system.alice):
        system.token.delegate(system.alice)
    boa.env.time_travel(seconds=1)
    old = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)], who=system.alice)
    gov.pass_and_execute([(gov.governor, calldata(gov.governor, "setQuorumBps", 10))])
    new = gov.propose([split_call(gov, 1000, 2000, 2000, 5000)], who=system.alice)
    assert gov.governor.proposals(old).quorum_bps == QUORUM_BPS
    assert gov.governor.proposals(new).quorum_bps == 10
