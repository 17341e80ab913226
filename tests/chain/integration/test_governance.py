"""Governance on anvil: handover, then propose → vote → queue → execute → the new split."""

from __future__ import annotations

import pytest

from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.errors import ConflictError, TransactionRevertedError, ValidationError
from openledger.governance.service import advance_devnet_clock
from openledger.node import Node
from openledger.units import OPEN

pytestmark = pytest.mark.anvil


def test_whole_path_changes_the_fee_split(chain: Node) -> None:
    c0 = chain.contracts
    assert c0.params.owner() == chain.accounts.operator_address()  # devnet: until handover
    done = chain.gov_handover("operator", fund=100_000 * OPEN)
    assert len(done) == 5
    assert chain.gov_handover("operator") == []  # idempotent
    c = chain.contracts
    tl = c.timelock.address
    assert c.params.owner() == tl == c.rewards.owner() == c.grants.owner()
    assert c.params.snapshot().treasury == tl
    assert c.token.balance_of(tl) == 100_000 * OPEN
    op = chain.accounts.signer("operator")
    with pytest.raises(TransactionRevertedError, match="caller is not the owner"):
        c.params.set_fee_split(op, 500, 2000, 2000, 5500)  # the operator no longer can

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
    chain.gov_handover("operator", fund=100_000 * OPEN)
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
