"""Governance on anvil: the devnet handed over at deploy, `gov handover` of an older
deployment, then propose → vote → queue → execute → the new split; a grant."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from openledger.chain.compile import GOVERNANCE_CONTRACT_NAMES
from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.chain.deploy import Addresses, Contracts, deploy_all
from openledger.errors import (
    AuthError,
    ConflictError,
    TransactionRevertedError,
    ValidationError,
)
from openledger.governance.devnet import advance_devnet_clock
from openledger.governance.handover import hand_over
from openledger.node import Node
from openledger.units import OPEN

pytestmark = pytest.mark.anvil


def test_a_fresh_devnet_is_handed_over_at_deploy(chain: Node) -> None:
    c, op = chain.contracts, chain.accounts.signer("operator")
    tl = c.timelock.address
    assert c.params.owner() == tl == c.rewards.owner() == c.grants.owner() == c.providers.owner()
    assert c.params.snapshot().treasury == tl
    assert c.escrow.contract.functions.owner().call() == op.address  # the escrow stays
    assert c.rewards.operator() == c.escrow.operator() == op.address  # settles epochs
    assert chain.gov_handover("operator") == []  # nothing left to hand over
    with pytest.raises(TransactionRevertedError, match="caller is not the owner"):
        c.params.set_fee_split(op, 500, 2000, 2000, 5500)  # the operator cannot
    with pytest.raises(TransactionRevertedError, match="caller is not the owner"):
        c.rewards.set_operator(op, chain.accounts.address("alice"))
    assert chain.gov_handover("operator", fund=1_000 * OPEN) == [
        f"moved {1_000 * OPEN} wei of OPEN to the Timelock"
    ]
    assert c.token.balance_of(tl) == 1_000 * OPEN


def test_handover_of_a_deployment_made_before_governance(chain: Node, tmp_path: Path) -> None:
    """`openledger gov handover` on an older deployment (no Governor, Timelock, Grants):
    deploys them, records them in the addresses file and hands over; idempotent."""
    op = chain.accounts.signer("operator")
    full = deploy_all(
        chain.client, op, treasury=op.address, operator=op.address, governance=CFG, hand_over=False
    )
    old = {k: v for k, v in full.contracts.items() if k not in GOVERNANCE_CONTRACT_NAMES}
    path = tmp_path / "addresses.json"
    replace(full, contracts=old).save(path)
    assert Contracts(chain.client, Addresses.load(path)).params.owner() == op.address
    with pytest.raises(AuthError, match="is owned by"):
        hand_over(chain.client, chain.accounts.signer("alice"), path)  # not the owner
    done = hand_over(chain.client, op, path, fund=100_000 * OPEN)
    assert done[0].startswith("deployed Governor at") and len(done) == 7
    assert "ProviderRegistry owner = Timelock" in done
    assert hand_over(chain.client, op, path) == []  # idempotent
    c = Contracts(chain.client, Addresses.load(path))
    tl = c.timelock.address
    assert c.params.owner() == tl == c.rewards.owner() == c.grants.owner()
    assert c.params.snapshot().treasury == tl and c.token.balance_of(tl) == 100_000 * OPEN
    assert c.governor.timelock() == tl


def test_whole_path_changes_the_fee_split(chain: Node) -> None:
    c = chain.contracts
    op = chain.accounts.signer("operator")
    gov = chain.governance
    alice = chain.accounts.signer("alice")
    with pytest.raises(ValidationError, match="delegated votes"):
        gov.propose(alice, {"platform_bps": "500", "contributors_bps": "5500"}, "")
    gov.delegate(op, op.address)
    gov.delegate(alice, alice.address)
    advance_devnet_clock(chain.client, 1)
    doc = gov.propose(op, {"platform_bps": "500", "contributors_bps": "5500"}, "cheaper platform")
    pid = doc["id"]
    assert doc["state"] == "pending"
    assert doc["calls"] == ["ProtocolParams.setFeeSplit(500, 2000, 2000, 5500)"]
    with pytest.raises(ConflictError, match="opens after its snapshot"):
        gov.vote(op, pid, "for")
    advance_devnet_clock(chain.client, CFG.voting_delay + 1)
    bob = chain.accounts.signer("bob")
    with pytest.raises(ValidationError, match="no delegated votes"):
        gov.vote(bob, pid, "for")
    voted = gov.vote(op, pid, "for")
    assert int(voted["weight"]) == c.token.get_votes(op.address)
    gov.vote(alice, pid, "against")
    with pytest.raises(ConflictError, match="already voted"):
        gov.vote(alice, pid, "for")
    with pytest.raises(ConflictError, match="not succeeded"):
        gov.queue(op, pid)
    advance_devnet_clock(chain.client, CFG.voting_period)
    with pytest.raises(ConflictError, match="ended"):
        gov.vote(bob, pid, "for")
    queued = gov.queue(op, pid)
    assert queued["state"] == "queued"
    with pytest.raises(ConflictError, match="s from now"):
        gov.execute(op, pid)
    advance_devnet_clock(chain.client, CFG.timelock_delay)
    assert gov.execute(bob, pid)["state"] == "executed"  # anyone executes
    p = c.params.snapshot()
    assert (p.platform_bps, p.owner_bps, p.stakers_bps, p.contributors_bps) == (
        500,
        2000,
        2000,
        5500,
    )
    assert [d["id"] for d in gov.list()] == [pid]


def test_grant_on_anvil(chain: Node) -> None:
    chain.gov_handover("operator", fund=100_000 * OPEN)  # funds the treasury (the Timelock)
    gov, c = chain.governance, chain.contracts
    op, erin = chain.accounts.signer("operator"), chain.accounts.signer("erin")
    with pytest.raises(ValidationError, match="outside the exploration tier's bounds"):
        gov.apply(erin, "exploration", 60_000 * OPEN, [60_000 * OPEN], "ipfs://x")
    with pytest.raises(ValidationError, match="sum to 20000 OPEN, the amount is 30000"):
        gov.apply(erin, "exploration", 30_000 * OPEN, [10_000 * OPEN] * 2, "ipfs://x")
    g = gov.apply(erin, "exploration", 30_000 * OPEN, [10_000 * OPEN, 20_000 * OPEN], "ipfs://x")
    gov.delegate(op, op.address)
    gov.delegate(erin, erin.address)  # 1M OPEN: above the devnet's proposal threshold
    advance_devnet_clock(chain.client, 1)
    pid = gov.propose_approval(op, g["id"])["id"]
    advance_devnet_clock(chain.client, CFG.voting_delay + 1)
    gov.vote(op, pid, "for")
    advance_devnet_clock(chain.client, CFG.voting_period)
    gov.queue(op, pid)
    advance_devnet_clock(chain.client, CFG.timelock_delay)
    gov.execute(op, pid)
    assert gov.grant(g["id"])["status"] == "approved"
    assert c.grants.escrowed() == 30_000 * OPEN
    assert c.token.balance_of(c.timelock.address) == 70_000 * OPEN
    release = gov.release(erin, g["id"])  # erin is not the committee: a proposal
    assert "proposal" in release
    before = c.token.balance_of(erin.address)
    rid = release["proposal"]["id"]
    advance_devnet_clock(chain.client, CFG.voting_delay + 1)
    gov.vote(op, rid, "for")
    advance_devnet_clock(chain.client, CFG.voting_period)
    gov.queue(op, rid)
    advance_devnet_clock(chain.client, CFG.timelock_delay)
    gov.execute(op, rid)
    assert c.token.balance_of(erin.address) == before + 10_000 * OPEN
    assert gov.grant(g["id"])["released"] == str(10_000 * OPEN)
