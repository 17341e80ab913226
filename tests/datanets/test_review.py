"""Review: quorum, decisions on chain, slashing, records kept out, withdrawal after unlock."""

from __future__ import annotations

import dataclasses

import pytest

from openledger.auth.principal import SCOPES, Principal
from openledger.datanets.review import slashed
from openledger.errors import AuthError, ConflictError, ValidationError
from openledger.units import OPEN
from tests.conftest import World
from tests.datanets.test_contribute import PARAS, contribute

pytestmark = pytest.mark.anvil


def _advance(w: World, seconds: int) -> None:
    w.node.client.rpc("evm_increaseTime", [seconds])
    w.node.client.rpc("evm_mine")


def test_quorum_approval_and_withdrawal(world: World) -> None:
    node, acc = world.node, world.node.accounts
    c = contribute(world, world.write("a.txt", PARAS[0]), stake=20 * OPEN)
    one = node.reviews.review(c.contribution_id, signer=acc.signer("bob"), approve=True)
    assert one["status"] == "pending" and one["approvals"] == 1
    with pytest.raises(ConflictError):
        node.reviews.review(c.contribution_id, signer=acc.signer("bob"), approve=True)
    two = node.reviews.review(c.contribution_id, signer=acc.signer("carol"), approve=True)
    assert two["status"] == "approved" and two["unlock_at"] > 0
    with pytest.raises(ConflictError) as err:
        node.reviews.withdraw(c.contribution_id, signer=acc.signer("alice"))
    assert "locked until" in err.value.message
    with pytest.raises(AuthError):
        node.reviews.withdraw(c.contribution_id, signer=acc.signer("erin"))
    _advance(world, node.contracts.params.get("stake_unlock_delay") + 1)
    before = node.contracts.token.balance_of(acc.address("alice"))
    out = node.reviews.withdraw(c.contribution_id, signer=acc.signer("alice"))
    assert int(out["amount"]) == 20 * OPEN and out["withdrawn"] is True
    assert node.contracts.token.balance_of(acc.address("alice")) == before + 20 * OPEN
    with pytest.raises(ConflictError):
        node.reviews.withdraw(c.contribution_id, signer=acc.signer("alice"))


def test_rejection_slashes_and_keeps_records_out(world: World) -> None:
    node, acc = world.node, world.node.accounts
    good = contribute(world, world.write("good.txt", PARAS[1]))
    bad = contribute(world, world.write("bad.txt", PARAS[0]), who="erin", stake=30 * OPEN)
    for v in ("bob", "carol"):
        node.reviews.review(good.contribution_id, signer=acc.signer(v), approve=True)
    with pytest.raises(ValidationError):
        node.reviews.review(bad.contribution_id, signer=acc.signer("bob"), approve=False)
    node.reviews.review(bad.contribution_id, signer=acc.signer("bob"), approve=False, reason="spam")
    out = node.reviews.review(
        bad.contribution_id, signer=acc.signer("carol"), approve=False, reason="copied"
    )
    slash_bps = node.contracts.params.get("slash_bps")
    assert out["status"] == "rejected" and int(out["slashed"]) == 30 * OPEN * slash_bps // 10_000
    snap = node.snapshots.snapshot("facts", signer=acc.signer("dave"))
    assert snap["contributions"] == [good.contribution_id] and snap["record_count"] == 1
    # the rejected text no longer blocks a genuine contributor
    again = contribute(world, world.write("mine.txt", PARAS[0]), who="frank")
    assert again.record_count == 1
    # the unslashed remainder is withdrawable at once; the slashed part never
    erin = acc.address("erin")
    before = node.contracts.token.balance_of(erin)
    node.reviews.withdraw(bad.contribution_id, signer=acc.signer("erin"))
    remainder = 30 * OPEN - int(out["slashed"])
    assert node.contracts.token.balance_of(erin) == before + remainder


def test_only_validators_review(world: World) -> None:
    c = contribute(world, world.write("a.txt", PARAS[0]))
    with pytest.raises(AuthError) as err:
        world.node.reviews.review(
            c.contribution_id, signer=world.node.accounts.signer("erin"), approve=True
        )
    assert "not a validator" in err.value.message


def test_slashed_rounds_down_as_the_registry_does() -> None:
    assert slashed(30 * OPEN, 1_000) == 3 * OPEN
    assert slashed(7, 1_500) == 1  # 1.05 wei, rounded down
    assert slashed(5, 0) == 0


def test_review_queue_of_a_validator(world: World) -> None:
    node, acc = world.node, world.node.accounts
    c = contribute(world, world.write("a.txt", PARAS[0]), stake=20 * OPEN)
    slash_bps = node.contracts.params.get("slash_bps")
    bob = node.reviews.queue(acc.address("bob"))
    assert bob["slash_bps"] == slash_bps and bob["validates"] == ["facts"]
    (item,) = bob["items"]
    assert item["id"] == c.contribution_id and item["datanet"] == "facts"
    assert item["at_risk"] == str(20 * OPEN * slash_bps // 10_000)
    assert item["reviewed"] is False and item["quorum"] == 2 and item["previews"]
    node.reviews.review(c.contribution_id, signer=acc.signer("bob"), approve=True)
    assert node.reviews.queue(acc.address("bob"))["items"][0]["reviewed"] is True
    assert node.reviews.queue(acc.address("carol"))["items"][0]["reviewed"] is False
    erin = node.reviews.queue(acc.address("erin"))  # validates nothing
    assert (erin["items"], erin["validates"]) == ([], [])


def test_detail_for_withholds_records_only_where_access_says_so(world: World) -> None:
    c = contribute(world, world.write("a.txt", PARAS[0]))
    asked: list[tuple[int, str | None]] = []

    def withheld(contribution: int, account: str | None) -> dict | None:
        asked.append((contribution, account))
        return None if account == "0xreader" else {"reason": "priced"}

    reviews = dataclasses.replace(world.node.reviews, withheld=withheld)
    full = reviews.detail(c.contribution_id)
    assert full["records"]["items"]
    assert reviews.detail_for(c.contribution_id, "0xreader") == full
    hidden = reviews.detail_for(c.contribution_id, None, limit=10)
    assert hidden["records"] == {
        **full["records"],
        "items": [],
        "limit": 10,
        "withheld": {"reason": "priced"},
    }
    operator = Principal("operator", "0xoperator", "operator", frozenset(SCOPES))
    assert reviews.detail_for(c.contribution_id, "0xoperator", requester=operator) == full
    key = Principal("key", "0xother", None, frozenset(SCOPES), key_id="olk_abcd1234")
    assert reviews.detail_for(c.contribution_id, "0xother", requester=key)["records"][
        "withheld"
    ] == {"reason": "priced"}
    assert asked == [
        (c.contribution_id, "0xreader"),
        (c.contribution_id, None),
        (c.contribution_id, "0xother"),
    ]
