"""Datanet access fees over HTTP: the owner prices a datanet, exports and training jobs of a
priced snapshot answer 402 (JSON naming the fix) until the account pays, a wallet pays
through prepare → sign → submit, contributors read free; nothing is charged for a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.node import Node
from openledger.units import OPEN
from tests.conftest import operator_headers
from tests.market import Market
from tests.web.injected import TestWallet

pytestmark = pytest.mark.anvil


@pytest.fixture
def client(market: Market) -> TestClient:
    return TestClient(create_app(market.node), raise_server_exceptions=False)


def key(m: Market, who: str) -> dict[str, str]:
    secret = m.node.api_keys.create(who, "t", "inference,read,write")["key"]
    return {"Authorization": f"Bearer {secret}"}


def test_prices_quotes_and_refusals(client: TestClient, market: Market) -> None:
    node, op = market.node, operator_headers(market.node)
    assert client.get("/datanets/facts/access").json()["export"] == "0"
    # a free snapshot exports without a credential
    assert client.get("/datanets/facts/snapshots/1/export").status_code == 200
    r = client.put(
        "/datanets/facts/access", json={"export": "4", "train": "6", "as": "dave"}, headers=op
    )
    assert r.status_code == 200, r.text
    assert (r.json()["export"], r.json()["train"]) == (str(4 * OPEN), str(6 * OPEN))
    high = client.put("/datanets/facts/access", json={"train": "1000.1", "as": "dave"}, headers=op)
    assert high.status_code == 422 and high.json()["field"] == "train"
    assert "max_access_price" in high.json()["message"]
    assert (
        client.put(
            "/datanets/facts/access", json={"export": "1"}, headers=key(market, "grace")
        ).status_code
        == 403
    )  # not the owner
    quote = client.get(
        "/datanets/facts/access",
        params={"version": 1, "kind": "export", "account": market.addr("grace")},
    ).json()["quote"]
    assert quote["due"] and quote["price"] == str(4 * OPEN)
    mine = client.get(
        "/datanets/facts/access",
        params={"version": 1, "kind": "train"},
        headers=key(market, "erin"),
    ).json()["quote"]
    assert (mine["due"], mine["reason"]) == (False, "contributor")

    grace = key(market, "grace")
    before = node.contracts.token.balance_of(market.addr("grace"))
    anon = client.get("/datanets/facts/snapshots/1/export")
    assert anon.status_code == 402 and anon.json()["field"] == "Authorization"
    r = client.get("/datanets/facts/snapshots/1/export", headers=grace)
    assert r.status_code == 402 and "pay the access fee" in r.json()["fix"]
    r = client.post("/jobs", json={"datanet": "facts@1", "base": "some/hub-model"}, headers=grace)
    assert r.status_code == 402 and r.json()["field"] == "access"
    assert client.get("/jobs").json()["items"] == []
    bad = client.post("/datanets/facts/access", json={"version": 1, "kind": "rent"}, headers=grace)
    assert bad.status_code == 422 and bad.json()["field"] == "kind"
    # the job a training payment is for is checked first: a job that would be refused pays nothing
    refused = client.post(
        "/datanets/facts/access",
        headers=grace,
        json={"version": 1, "kind": "train", "base": "/nonexistent/base"},
    )
    assert refused.status_code == 404 and refused.json()["field"] == "base"
    assert node.contracts.token.balance_of(market.addr("grace")) == before
    # the records of a contribution in the snapshot are not a way around the price
    alice_c = f"/datanets/facts/contributions/{market.contributions['alice']}"
    assert client.get(alice_c).json()["records"]["items"] == []
    withheld = client.get(alice_c, headers=grace).json()["records"]
    assert withheld["items"] == [] and withheld["withheld"]["price"] == str(4 * OPEN)
    assert "pay the access fee" in withheld["withheld"]["fix"]
    for reader in ("alice", "erin", "bob", "dave"):  # contributors, a validator, the owner
        assert client.get(alice_c, headers=key(market, reader)).json()["records"]["items"]
    assert client.get(alice_c, headers=op).json()["records"]["items"]
    # the contributor exports with their own key
    r = client.get("/datanets/facts/snapshots/1/export", headers=key(market, "alice"))
    assert r.status_code == 200 and "Amazon" in r.text

    # the node holds grace's key on the devnet: it pays for her
    paid = client.post(
        "/datanets/facts/access", json={"version": 1, "kind": "export"}, headers=grace
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["kind"], paid.json()["amount"]) == ("export", str(4 * OPEN))
    assert client.get("/datanets/facts/snapshots/1/export", headers=grace).status_code == 200
    assert node.contracts.token.balance_of(market.addr("grace")) == before - 4 * OPEN
    records = client.get(alice_c, headers=grace).json()["records"]
    assert "withheld" not in records and len(records["items"]) == records["total"] >= 1  # paid
    again = client.post(
        "/datanets/facts/access", json={"version": 1, "kind": "export"}, headers=grace
    )
    assert again.status_code == 409 and "already paid" in again.json()["message"]
    # the operator token exports as the account it names, and only what that account may
    as_grace = client.get("/datanets/facts/snapshots/1/export", params={"as": "grace"}, headers=op)
    assert as_grace.status_code == 200
    assert (
        client.get(
            "/datanets/facts/snapshots/1/export", params={"as": "bob"}, headers=op
        ).status_code
        == 402
    )
    assert node.contracts.token.balance_of(market.addr("grace")) == before - 4 * OPEN


def test_a_wallet_pays_and_trains_through_prepare_sign_submit(
    client: TestClient, market: Market, chain: Node, tmp_path: Path
) -> None:
    node = market.node
    wallet = TestWallet(node, "0x" + "6d" * 32)
    wallet.fund(chain)
    client.put(
        "/datanets/facts/access",
        json={"export": "0", "train": "2.5", "as": "dave"},
        headers=operator_headers(node),
    )
    mine = key(market, wallet.address)
    r = client.post("/datanets/facts/access", json={"version": 1, "kind": "train"}, headers=mine)
    assert r.status_code == 201, r.text
    prepared = r.json()["wallet"]
    assert [t["label"] for t in prepared["txs"]] == ["approve", "payAccess"]
    assert node.access.list(payer=wallet.address)["items"] == []  # nothing until it is sent
    hashes = []
    for tx in prepared["txs"]:
        hashes.append(wallet.send(tx))
        node.client.wait_receipt(hashes[-1], label=tx["label"])
    done = client.post(
        "/wallet/submit", json={"pending": prepared["pending"], "hashes": hashes}, headers=mine
    )
    assert done.status_code == 200, done.text
    access = done.json()["access"]
    assert done.json()["payer"] == wallet.address and done.json()["amount"] == str(5 * OPEN // 2)
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    job = client.post(
        "/jobs", json={"datanet": "facts@1", "base": str(base), "access": access}, headers=mine
    )
    assert job.status_code == 201, job.text
    assert job.json()["params"]["access"]["access"] == access
    again = client.post("/jobs", json={"datanet": "facts@1", "base": str(base)}, headers=mine)
    assert again.status_code == 402  # the payment was spent by the first job


def test_the_factory_form_pays_then_queues(market: Market, tmp_path: Path) -> None:
    """The web app's path (tests/web drives the page): a signed-in dev account pays the
    training price and queues the job; a job that would be refused costs nothing."""
    node, web = market.node, {"X-OpenLedger-Web": "1"}
    client = TestClient(
        create_app(node), base_url="http://127.0.0.1:8000", raise_server_exceptions=False
    )  # the node's own origin, for sign-ins
    client.put(
        "/datanets/facts/access", json={"train": "3", "as": "dave"}, headers=operator_headers(node)
    )
    assert client.post("/web/auth/dev", json={"name": "grace"}, headers=web).status_code == 200
    before = node.contracts.token.balance_of(market.addr("grace"))
    # only the owner prices it; the web app's export reads as the signed-in account
    not_owner = client.put("/web/api/datanets/facts/access", json={"export": "1"}, headers=web)
    assert not_owner.status_code == 403 and not_owner.json()["field"] == "as"
    assert client.get("/web/api/datanets/facts/snapshots/1/export").status_code == 200  # free
    client.put(
        "/datanets/facts/access", json={"export": "1", "as": "dave"}, headers=operator_headers(node)
    )
    due = client.get("/web/api/datanets/facts/snapshots/1/export")
    assert due.status_code == 402 and due.json()["field"] == "access"
    erin_c = f"/web/api/contributions/{market.contributions['erin']}"
    assert "withheld" in client.get(erin_c).json()["records"]  # grace has not paid
    refused = client.post(
        "/web/api/datanets/facts/access",
        headers=web,
        json={"version": 1, "kind": "train", "base": str(tmp_path / "missing")},
    )
    assert refused.status_code == 404 and refused.json()["field"] == "base"
    assert node.contracts.token.balance_of(market.addr("grace")) == before
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    paid = client.post(
        "/web/api/datanets/facts/access",
        headers=web,
        json={"version": 1, "kind": "train", "base": str(base)},
    )
    assert paid.status_code == 201, paid.text
    job = client.post(
        "/web/api/jobs",
        headers=web,
        json={"datanet": "facts@1", "base": str(base), "access": paid.json()["access"]},
    )
    assert job.status_code == 201, job.text
    assert job.json()["owner"] == market.addr("grace")
    assert node.contracts.token.balance_of(market.addr("grace")) == before - 3 * OPEN
