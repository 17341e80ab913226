"""/governance and /grants over HTTP on the devnet: JSON 4xx for bad input, the path works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.governance.devnet import advance_devnet_clock
from openledger.node import Node
from tests.conftest import operator_headers

pytestmark = pytest.mark.anvil


@pytest.fixture
def client(chain: Node) -> Iterator[TestClient]:
    chain.gov_handover("operator", fund=100_000 * 10**18)
    with TestClient(
        create_app(chain), raise_server_exceptions=False, headers=operator_headers(chain)
    ) as client:
        yield client


def test_governance_routes(client: TestClient, chain: Node) -> None:
    doc = client.get("/governance").json()
    assert doc["handed_over"] and doc["treasury"] == doc["timelock"]
    assert client.get("/governance/proposals").json() == {"total": 0, "items": []}
    r = client.post("/governance/proposals", json={"as": "operator", "set": {"owner_bps": "2100"}})
    assert r.status_code == 422 and r.json()["field"] == "fee split"
    assert "sum to 10100 bps" in r.json()["message"]
    r = client.post("/governance/proposals", json={"as": "operator", "set": {"nope": "1"}})
    assert r.status_code == 422 and "not a governable key" in r.json()["message"]
    r = client.post("/governance/delegate", json={"as": "operator", "delegatee": "operator"})
    assert r.status_code == 200
    advance_devnet_clock(chain.client, 1)
    r = client.post(
        "/governance/proposals",
        json={
            "as": "operator",
            "set": {"owner_bps": "1900", "stakers_bps": "2100"},
            "description": "more to stakers",
        },
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = client.post(f"/governance/proposals/{pid}/votes", json={"as": "operator", "support": "for"})
    assert r.status_code == 409 and "opens after its snapshot" in r.json()["message"]
    advance_devnet_clock(chain.client, CFG.voting_delay + 1)
    r = client.post(f"/governance/proposals/{pid}/votes", json={"as": "dave", "support": "for"})
    assert r.status_code == 422 and "no delegated votes" in r.json()["message"]
    r = client.post(f"/governance/proposals/{pid}/votes", json={"as": "operator", "support": "for"})
    assert r.status_code == 200 and r.json()["votes"]["for"] == r.json()["weight"]
    advance_devnet_clock(chain.client, CFG.voting_period)
    assert client.post(f"/governance/proposals/{pid}/queue", json={}).json()["state"] == "queued"
    r = client.post(f"/governance/proposals/{pid}/execute", json={})
    assert r.status_code == 409 and "s from now" in r.json()["message"]
    advance_devnet_clock(chain.client, CFG.timelock_delay)
    r = client.post(f"/governance/proposals/{pid}/execute", json={"as": "alice"})
    assert r.status_code == 200 and r.json()["state"] == "executed"
    assert client.get(f"/governance/proposals/{pid}").json()["state"] == "executed"
    assert client.get("/governance/proposals/99").status_code == 404
    assert chain.contracts.params.get("stakers_bps") == 2100


def test_grant_routes(client: TestClient) -> None:
    r = client.post(
        "/grants",
        json={"as": "erin", "tier": "expansion", "amount": "200000", "milestones": ["200000"]},
    )
    assert r.status_code == 422
    assert "outside the expansion tier's bounds (250000 to 500000 OPEN)" in r.json()["message"]
    r = client.post(
        "/grants",
        json={
            "as": "erin",
            "tier": "exploration",
            "amount": "30000",
            "milestones": ["10000", "10000"],
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "milestones"
    r = client.post(
        "/grants",
        json={
            "as": "erin",
            "tier": "exploration",
            "amount": "30000",
            "milestones": ["10000", "20000"],
            "metadata_uri": "ipfs://a",
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    listing = client.get("/grants").json()
    assert listing["total"] == 1 and listing["tiers"][0]["min"] == str(25_000 * 10**18)
    assert client.get("/grants/1").json()["metadata_uri"] == "ipfs://a"
    assert client.get("/grants/2").status_code == 404
    r = client.post("/grants/1/release", json={"as": "erin"})
    assert r.status_code == 409 and "not approved" in r.json()["message"]
