"""Governance fixtures for the contract unit tests: Governor, Timelock and Grants deployed
beside the session's contract set, and the path propose → vote → queue → execute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
from eth_utils import keccak

from .contract_helpers import DAY, OPEN, System, addr

VOTING_DELAY = DAY
VOTING_PERIOD = 5 * DAY
THRESHOLD = 100_000 * OPEN
QUORUM_BPS = 400
TL_DELAY = 2 * DAY
PENDING, ACTIVE, CANCELED, DEFEATED, SUCCEEDED, QUEUED, EXPIRED, EXECUTED = range(8)
AGAINST, FOR, ABSTAIN = 0, 1, 2
# 4 % of the supply: the voter holds just enough for quorum on its own
QUORUM_VOTES = 40_000_000 * OPEN


def calldata(contract: Any, fn: str, *args: Any) -> bytes:
    """ABI-encoded call of ``contract.fn(*args)`` (boa's own encoder)."""
    return getattr(contract, fn).prepare_calldata(*args)


@dataclass
class Gov:
    system: System
    governor: Any
    timelock: Any
    grants: Any
    whale: str  # holds and self-delegates QUORUM_VOTES

    def propose(
        self, calls: list[tuple[Any, bytes]], who: str | None = None, description: str = "test"
    ) -> int:
        with boa.env.prank(who or self.whale):
            return self.governor.propose(
                [c.address for c, _ in calls], [0] * len(calls), [d for _, d in calls], description
            )

    def pass_and_execute(self, calls: list[tuple[Any, bytes]], description: str = "test") -> int:
        pid = self.propose(calls, description=description)
        boa.env.time_travel(seconds=VOTING_DELAY + 1)
        with boa.env.prank(self.whale):
            self.governor.castVote(pid, FOR)
        boa.env.time_travel(seconds=VOTING_PERIOD)
        self.governor.queue(pid)
        boa.env.time_travel(seconds=TL_DELAY)
        self.governor.execute(pid)
        return pid


def deploy_gov(factories: dict[str, Any], system: System, *, hand_over: bool = True) -> Gov:
    deployer = system.deployer
    with boa.env.prank(deployer):
        governor = factories["Governor"].deploy(
            system.token.address, VOTING_DELAY, VOTING_PERIOD, THRESHOLD, QUORUM_BPS
        )
        timelock = factories["Timelock"].deploy(TL_DELAY, governor.address)
        governor.initTimelock(timelock.address)
        grants = factories["Grants"].deploy(system.token.address, system.params.address)
        if hand_over:
            system.params.setTreasury(timelock.address)
            system.params.transfer_ownership(timelock.address)
            system.distributor.transfer_ownership(timelock.address)
            grants.transfer_ownership(timelock.address)
    whale = addr("whale")
    system.fund(whale, QUORUM_VOTES)
    with boa.env.prank(whale):
        system.token.delegate(whale)
    boa.env.time_travel(seconds=1)
    return Gov(system, governor, timelock, grants, whale)


def op_salt(pid: int) -> bytes:
    return pid.to_bytes(32, "big")


def h32(label: str) -> bytes:
    return keccak(text=label)
