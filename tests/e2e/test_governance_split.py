"""Effects are live: an executed proposal that changes the fee split changes the split of the
very next paid inference, and the settled epoch pays by it (exact wei, through the ledger,
the RewardDistributor and the Timelock as treasury)."""

from __future__ import annotations

import pytest

from openledger.attribution.types import Attribution, Share
from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.governance.devnet import advance_devnet_clock
from openledger.node import Node
from tests.market import Market

pytestmark = pytest.mark.anvil

FEE = 190 * 10**12  # 40 prompt tokens at 0.003 + 10 completion tokens at 0.007 OPEN per 1k


def charge(m: Market, i: int) -> dict:
    erin = m.contributions["erin"]
    a = Attribution("gradient", {}, (Share(erin, m.addr("erin"), 0.6, 1.0),))
    hold = m.node.ledger.reserve(m.user, m.model, 40, 10)
    r = m.node.ledger.charge(hold, 10, request_hash=f"0x{i:064x}", attribution=a)
    assert int(r.body["fee"]) == FEE
    return r.body


def test_executed_proposal_changes_the_next_inference_split(market: Market, chain: Node) -> None:
    node = market.node
    timelock = chain.contracts.timelock.address
    assert node.params.current().treasury == timelock  # handed over at deploy
    before = charge(market, 1)
    assert before["split"]["bps"] == [1000, 2000, 2000, 5000]
    assert before["split"]["platform"] == str(19 * 10**12)

    gov, op = node.governance, chain.accounts.signer("operator")
    gov.delegate(op, op.address)
    advance_devnet_clock(node.client, 1)
    pid = gov.propose(op, {"platform_bps": "5%", "owner_bps": "2500"}, "owners get 25 %")["id"]
    advance_devnet_clock(node.client, CFG.voting_delay + 1)
    gov.vote(op, pid, "for")
    advance_devnet_clock(node.client, CFG.voting_period)
    gov.queue(op, pid)
    advance_devnet_clock(node.client, CFG.timelock_delay)
    assert gov.execute(op, pid)["state"] == "executed"

    after = charge(market, 2)  # the very next paid inference
    assert after["split"]["bps"] == [500, 2500, 2000, 5000]
    assert {k: after["split"][k] for k in ("platform", "owner", "stakers", "contributors")} == {
        "platform": str(95 * 10**11),
        "owner": str(475 * 10**11),
        "stakers": str(38 * 10**12),
        "contributors": str(95 * 10**12),
    }
    got = {(p["role"], p["account"]): int(p["amount"]) for p in after["payouts"]}
    assert got[("platform", timelock)] == 95 * 10**11  # the Timelock is the treasury
    assert got[("owner", market.model["owner"])] == 475 * 10**11

    doc = node.epochs.close()
    assert doc["status"] == "settled" and int(doc["fees"]) == 2 * FEE
    platform = 19 * 10**12 + 95 * 10**11  # the old split's 10 %, then the new one's 5 %
    assert node.rewards.earnings(timelock)["settled"] == str(platform)
    assert node.rewards.earnings(timelock)["by_role"]["platform"] == str(platform)
    owner = node.rewards.earnings(market.model["owner"])
    assert owner["by_role"]["owner"] == str(38 * 10**12 + 475 * 10**11)
    advance_devnet_clock(node.client, node.params.current().root_activation_delay + 1)
    held = node.contracts.token.balance_of(timelock)
    node.rewards.claim(timelock, op)  # anyone may claim for the treasury
    assert node.contracts.token.balance_of(timelock) == held + platform
