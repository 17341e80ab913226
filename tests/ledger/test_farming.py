"""Payouts that cannot be farmed: the unattributed part of the contributors' share is paid
pro rata to approved records, so a record that adds no data would take a share. Padding a
contribution with near-copies of one's own records, contributing one's own record again
with a word changed, or copying another contributor's note with two words changed is
refused before anything is written, and the split of real paid requests pays each
contributor by its honest records.

One's own records are held to the near-duplicate rule only (Jaccard ≥ 0.8 of character
5-grams): rows of one template differ by a word or two and are different facts, so a
rewording of one's own record under 0.8 is accepted (tests/datanets/test_contribute.py;
docs/security.md says so). Padding and re-contributing here are near-copies (≥ 0.8)."""

from __future__ import annotations

import pytest

from openledger.datanets.dedup import jaccard
from openledger.datanets.parsers import IngestError
from openledger.node import Node
from openledger.units import OPEN
from tests.conftest import World
from tests.market import Market

pytestmark = pytest.mark.anvil

NOTE = (
    "Honeybees communicate the location of flowers through a waggle dance performed inside "
    "the hive, whose angle gives the direction."
)
TRENCH = (
    "The Mariana Trench is the deepest known point of the ocean floor, nearly eleven "
    "kilometres below the surface of the Pacific."
)
PADDED = (
    "Sea otters hold hands while they sleep on the water, so that the current does not carry "
    "them apart from their group during the night."
)


def _contribute(world: World, who: str, name: str, text: str) -> int:
    node = world.node
    done = node.contributions.contribute(
        "facts", [world.write(name, text)], stake=10 * OPEN, signer=node.accounts.signer(who)
    )
    for v in ("bob", "carol"):
        node.reviews.review(done.contribution_id, signer=node.accounts.signer(v), approve=True)
    return done.contribution_id


def _unattributed(node: Node, name: str) -> int:
    return int(node.rewards.earnings(node.accounts.address(name))["by_role"].get("unattributed", 0))


def test_padding_or_rewording_does_not_raise_a_contributors_payout(
    market: Market, world: World
) -> None:
    node = market.node
    _contribute(world, "alice", "bees.txt", NOTE)
    _contribute(world, "frank", "trench.txt", TRENCH)
    farming = {
        # another contributor's note, two words changed (Jaccard 0.77: under 0.8)
        "copy.txt": NOTE.replace("location", "position").replace("direction", "heading"),
        # his own record again, a word changed
        "again.txt": TRENCH.replace("ocean floor", "ocean bed"),
        # a file padded with near-copies of its own first record
        "padded.md": "\n\n".join(
            [
                PADDED,
                PADDED.replace("hold hands", "hold paws"),
                PADDED.replace("the night", "each night"),
            ]
        ),
    }
    for name, text in farming.items():
        before = world.footprint()
        with pytest.raises(IngestError) as err:
            node.contributions.contribute(
                "facts",
                [world.write(name, text)],
                stake=10 * OPEN,
                signer=node.accounts.signer("frank"),
            )
        assert err.value.rule == ("reworded_copy" if name == "copy.txt" else "near_duplicate")
        assert world.footprint() == before, name
    assert 0.76 <= jaccard(NOTE, farming["copy.txt"]) < 0.8  # under the near-duplicate bar
    assert jaccard(TRENCH, farming["again.txt"]) >= 0.8  # one's own: a near-copy
    first, *padding = farming["padded.md"].split("\n\n")
    assert all(jaccard(first, p) >= 0.8 for p in padding)
    snap = node.snapshots.snapshot("facts", signer=node.accounts.signer("dave"))
    model = {**market.model, "snapshot_roots": [snap["root"]]}
    # approved records behind the model (the market's short paragraphs are packed into one
    # record each): alice 1 + 1, erin 1, frank 1 + 1 -- none of frank's three attempts
    records = {"alice": 2, "erin": 1, "frank": 2}
    pool = 0
    for i in range(4):  # paid requests with no attribution: all of the contributors' part
        hold = node.ledger.reserve(market.user, model, 30 + i, 20)  # is unattributed
        receipt = node.ledger.charge(hold, 20, request_hash=f"0x{i:064x}", attribution=None)
        pool += int(receipt.body["pools"]["unattributed"])
    node.epochs.close()  # the pools are divided at the seal
    earned = {who: _unattributed(node, who) for who in records}
    assert sum(earned.values()) == pool > 0
    total = sum(records.values())
    for who, n in records.items():  # each by its honest records, to the rounding of 4 pools
        assert abs(earned[who] - pool * n // total) <= 4, (who, earned, pool)
    # had the three been accepted, frank would hold 5 of 8 records: 5/8 of the pool, not 2/5
    assert earned["frank"] * 5 <= pool * 2 + 20
