"""/rewards and /epochs over HTTP on the devnet: what the ledger's services say, by address
or account name, before and after an epoch is settled on chain (receipts, /credit and
/receipts by /v1 calls are in test_paid_inference.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.attribution.types import Attribution, Share
from openledger.ledger.pricing.fees import divide_pools
from openledger.ledger.settlement.beneficiaries import load_sets
from tests.market import Market

pytestmark = pytest.mark.anvil


@pytest.fixture
def client(market: Market) -> Iterator[TestClient]:
    with TestClient(create_app(market.node), raise_server_exceptions=False) as client:
        yield client


def charge(market: Market, n: int) -> list[int]:
    """``n`` requests paid by grace; erin's contribution is credited 60 % of each."""
    erin = market.contributions["erin"]
    a = Attribution("gradient", {}, (Share(erin, market.addr("erin"), 0.6, 1.0),))
    ids = []
    for i in range(n):
        hold = market.node.ledger.reserve(market.user, market.model, 40, 30)
        r = market.node.ledger.charge(hold, 10 + i, request_hash=f"0x{i:064x}", attribution=a)
        ids.append(r.seq)
    return ids


def test_rewards_by_name_or_address_before_and_after_settlement(
    market: Market, client: TestClient
) -> None:
    ids = charge(market, 3)
    erin = market.addr("erin")
    public = [market.node.ledger.public_id(i) for i in ids]  # anyone the payer gives it to
    bodies = [client.get(f"/receipts/{p}").json()["receipt"] for p in public]
    earned = sum(int(p["amount"]) for b in bodies for p in b["payouts"] if p["account"] == erin)
    pools: dict[tuple[str, str], int] = defaultdict(int)
    for b in bodies:  # and erin's shares of the pools, divided as the seal will divide them
        for role, amount in b["pools"].items():
            pools[(b["beneficiaries"], role)] += int(amount)
    with market.node.db.session() as s:
        sets = load_sets(s, {h for h, _ in pools})
    earned += sum(p.amount for _, p in divide_pools(pools, sets) if p.account == erin)
    assert earned > 0

    doc = client.get("/rewards/erin").json()
    assert doc["account"] == erin and doc["earnings"]["earned"] == str(earned)
    assert doc["earnings"] == market.node.rewards.earnings(erin)
    assert doc["earnings"]["unsettled"] == str(earned)
    assert doc["claimable"]["claimable"] == "0" and doc["claimable"]["epoch"] is None
    assert client.get(f"/rewards/{erin.lower()}").json() == doc  # an address, checksummed

    assert client.get("/epochs").json() == {"total": 0, "items": []}
    market.node.epochs.close()
    listed = client.get("/epochs").json()
    assert listed["total"] == 1
    [epoch] = listed["items"]
    assert (epoch["epoch"], epoch["status"], epoch["receipts"]) == (1, "settled", 3)
    assert (epoch["first_receipt"], epoch["last_receipt"]) == (ids[0], ids[-1])
    assert client.get("/epochs/1").json() == epoch
    assert client.get(f"/receipts/{public[0]}").json()["epoch"] == 1

    market.node.client.rpc("evm_increaseTime", [3_601])  # the root's activation delay
    market.node.client.rpc("evm_mine")
    after = client.get("/rewards/erin").json()
    assert after["earnings"]["settled"] == str(earned)
    claim = after["claimable"]
    assert (claim["epoch"], claim["cumulative"], claim["claimable"]) == (
        1,
        str(earned),
        str(earned),
    )
    assert claim["proof"] and claim == market.node.rewards.claimable(erin)


def test_bad_accounts_and_epochs_are_clear_errors(client: TestClient) -> None:
    r = client.get("/rewards/nobody")
    assert r.status_code == 404
    assert (r.json()["error"], r.json()["field"], r.json()["value"]) == (
        "NotFoundError",
        "account",
        "nobody",
    )
    assert "alice" in r.json()["fix"]
    r = client.get("/rewards/0x1234")
    assert r.status_code == 422 and r.json()["field"] == "account"
    r = client.get("/epochs/2")
    assert r.status_code == 404 and r.json()["field"] == "epoch"
    assert client.get("/epochs/two").status_code == 422
