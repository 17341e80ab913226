"""Earnings views and claims against the root on chain."""

from __future__ import annotations

import pytest

from openledger.errors import TransactionRevertedError
from tests.ledger.settlement.test_epochs import fast_forward, paid
from tests.market import Market

pytestmark = pytest.mark.anvil


def test_claim_pays_once_and_matches_earnings(market: Market) -> None:
    node = market.node
    paid(market, 3)
    erin = market.addr("erin")
    earned = node.rewards.earnings(erin)
    assert int(earned["earned"]) > 0 and earned["settled"] == "0"
    assert set(earned["by_role"]) == {"contributor", "staker", "unattributed"}
    assert earned["by_contribution"] == {str(market.contributions["erin"]): earned["earned"]}
    node.epochs.close()
    assert node.rewards.claimable(erin)["claimable"] == "0"  # activation delay
    fast_forward(node)
    before = node.contracts.token.balance_of(erin)
    first = node.rewards.claim(erin, node.accounts.signer("erin"))
    assert first["paid"] == earned["earned"] and first["tx_hash"]
    assert node.contracts.token.balance_of(erin) - before == int(earned["earned"])
    assert node.contracts.rewards.claimed(erin) == int(earned["earned"])
    again = node.rewards.claim(erin, node.accounts.signer("erin"))
    assert again["paid"] == "0" and again["tx_hash"] is None
    assert node.contracts.token.balance_of(erin) - before == int(earned["earned"])


def test_the_rejected_contribution_earns_nothing(market: Market) -> None:
    node = market.node
    paid(market, 2)
    frank = node.rewards.earnings(market.addr("frank"))
    assert str(market.rejected) not in frank["by_contribution"]
    assert set(frank["by_contribution"]) == {str(market.contributions["frank"])}


def test_a_wrong_proof_reverts_with_a_clear_reason(market: Market) -> None:
    node = market.node
    paid(market, 2)
    node.epochs.close()
    fast_forward(node)
    erin = market.addr("erin")
    c = node.rewards.claimable(erin)
    with pytest.raises(TransactionRevertedError, match="invalid proof") as exc:
        node.contracts.rewards.claim(
            node.accounts.signer("erin"),
            erin,
            int(c["cumulative"]) + 1,
            [bytes.fromhex(p[2:]) for p in c["proof"]],
        )
    assert "RewardDistributor: invalid proof" in exc.value.message
    assert node.contracts.rewards.claimed(erin) == 0


def test_plan_claim(market: Market) -> None:
    """Nothing claimable: no calls, and the finish says so with the balance. Settled: one
    ``claim`` call, which anyone may send for the account; its finish (the same Resume a
    wallet's report takes) says what was paid and the balance after."""
    node, token = market.node, market.node.contracts.token
    erin, op = market.addr("erin"), node.accounts.address("operator")
    plan = node.rewards.plan_claim(op, erin)
    assert plan.calls == [] and plan.resume is not None
    assert plan.resume.kind == "rewards.finish_claim"
    doc = plan.run(node.accounts.signer("operator"))
    assert (doc["paid"], doc["paid_open"], doc["tx_hash"]) == ("0", "0", None)
    assert doc["balance"] == str(token.balance_of(erin))

    paid(market, 2)
    node.epochs.close()
    fast_forward(node)
    c = node.rewards.claimable(erin)
    assert int(c["claimable"]) > 0
    plan = node.rewards.plan_claim(op, erin)
    assert plan.sender == op
    assert [(x.contract, x.label) for x in plan.calls] == [("RewardDistributor", "claim")]
    assert plan.resume is not None and plan.resume.args == {"before": c}
    before = token.balance_of(erin)
    results = [node.client.send_call(x, node.accounts.signer("operator")) for x in plan.calls]
    doc = node.finisher(plan.resume.kind)(plan.resume.args, None, results, None)
    assert doc["paid"] == c["claimable"] and doc["claimable"] == "0"
    assert doc["balance"] == str(before + int(c["claimable"])) == str(token.balance_of(erin))
    assert doc["tx_hash"] == results[0].tx_hash
    assert node.rewards.plan_claim(erin, erin).calls == []
