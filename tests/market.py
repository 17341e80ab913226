"""A priced model over a real datanet snapshot on the devnet, and a paying user.

``build_market`` (the root conftest's ``market`` fixture): datanet 'facts' (validators bob
and carol) with approved contributions of alice (stake 10 OPEN), erin (30 OPEN) and frank
(20 OPEN), frank's second contribution rejected and slashed, snapshot 1 committed; a model
dict owned by dave trained on it (the ledger needs only its prices, owner and snapshot
roots); grace deposited 100 OPEN of inference credit and the node synced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openledger.governance.devnet import as_timelock
from openledger.node import Node
from openledger.units import OPEN
from tests.conftest import World

PRICE_IN = 3 * OPEN // 1000  # 0.003 OPEN per 1k prompt tokens
PRICE_OUT = 7 * OPEN // 1000
TEXTS = {
    "alice": "The Amazon river drains about forty percent of South America.\n\n"
    "Honey never spoils when it is sealed.",
    "erin": "Light from the Sun reaches the Earth in about eight minutes.",
    "frank": "Octopuses have three hearts and blue blood.",
}


@dataclass
class Market:
    node: Node
    model: dict[str, Any]
    contributions: dict[str, int]  # contributor name -> chain contribution id
    rejected: int
    user: str  # address of the paying account (grace)

    def addr(self, name: str) -> str:
        return self.node.accounts.address(name)


def deposit(node: Node, who: str, amount: int) -> None:
    signer = node.accounts.signer(who)
    node.contracts.token.ensure_allowance(signer, node.contracts.escrow.address, amount)
    node.contracts.escrow.deposit(signer, amount)
    node.sync_chain()


def make_operator(chain: Node, node: Node) -> None:
    """Let ``node``'s operator key settle on the shared devnet; rolled back with the chain
    snapshot. The deployer (``chain``'s operator) owns the escrow; the Timelock owns the
    distributor, so its operator is set by the Timelock itself (``as_timelock``: what an
    executed proposal does, without the proposal, which is not this fixture's subject)."""
    owner, operator = chain.accounts.signer("operator"), node.accounts.operator_address()
    chain.client.rpc("anvil_setBalance", [operator, hex(100 * 10**18)])
    chain.contracts.escrow.set_operator(owner, operator)
    rewards = chain.contracts.rewards.contract.functions
    as_timelock(chain.contracts, rewards.setOperator(operator))


def build_market(world: World, chain: Node) -> Market:
    node, acc = world.node, world.node.accounts
    make_operator(chain, node)
    ids: dict[str, int] = {}
    stakes = {"alice": 10 * OPEN, "erin": 30 * OPEN, "frank": 20 * OPEN}
    for who, text in TEXTS.items():
        r = node.contributions.contribute(
            "facts", [world.write(f"{who}.txt", text)], stake=stakes[who], signer=acc.signer(who)
        )
        ids[who] = r.contribution_id
    bad = node.contributions.contribute(
        "facts",
        [world.write("spam.txt", "buy cheap watches now")],
        stake=10 * OPEN,
        signer=acc.signer("frank"),
    )
    for cid in ids.values():
        for v in ("bob", "carol"):
            node.reviews.review(cid, signer=acc.signer(v), approve=True)
    for v in ("bob", "carol"):
        node.reviews.review(bad.contribution_id, signer=acc.signer(v), approve=False, reason="spam")
    snap = node.snapshots.snapshot("facts", signer=acc.signer("dave"))
    model = {
        "id": 1,
        "name": "facts-lora",
        "owner": acc.address("dave"),
        "base": "tiny-base",
        "adapter_sha256": "ab" * 32,
        "snapshot_roots": [snap["root"]],
        "price_in": str(PRICE_IN),
        "price_out": str(PRICE_OUT),
    }
    deposit(node, "grace", 100 * OPEN)
    return Market(node, model, ids, bad.contribution_id, acc.address("grace"))
