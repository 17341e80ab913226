"""/agents over HTTP on the devnet: the credential rules of docs/security.md (the operator
token names node accounts, a key acts for its own account only, a wallet's key gets its
writes prepared and sends them itself), reads, and the wallet's credit for its owner only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from openledger.app import create_app
from openledger.node import Node
from openledger.units import OPEN
from tests.agents.test_agents import publish
from tests.conftest import operator_headers

pytestmark = pytest.mark.anvil


@pytest.fixture
def api(dnode: Node) -> Iterator[tuple[Node, TestClient, dict[str, dict[str, str]]]]:
    publish(dnode, "m1")
    headers = {"operator": operator_headers(dnode)}
    for who in ("alice", "bob"):
        key = dnode.api_keys.create(who, "t", "read,write,inference")["key"]
        headers[who] = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(dnode), raise_server_exceptions=False) as client:
        yield dnode, client, headers


def test_create_read_fund_pause_with_node_held_accounts(api: Any) -> None:
    node, client, h = api
    body = {
        "name": "helper",
        "model": "m1",
        "price": "0.5",
        "system_prompt": "Be brief.",
        "calls": ["m1"],
        "spend_cap": "3",
        "as": "alice",
    }
    r = client.post("/agents", json=body, headers=h["operator"])
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["owner"] == node.accounts.address("alice") and doc["price"] == str(OPEN // 2)
    assert doc["config"]["spend_cap"] == str(3 * OPEN) and doc["config"]["calls"] == ["m1"]
    listed = client.get("/agents").json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "helper"
    assert client.get("/agents/agent/helper").status_code == 404  # a name, not a path
    assert client.get("/agents/helper").json() == doc

    # a key acts for its own account only
    r = client.post("/agents", json={**body, "name": "x2", "as": "bob"}, headers=h["alice"])
    assert r.status_code == 403 and r.json()["field"] == "as"
    r = client.post("/agents/helper/pause", json={}, headers=h["bob"])
    assert r.status_code == 403 and "Only the owner" in r.json()["message"]
    r = client.get("/agents/helper/wallet", headers=h["bob"])
    assert r.status_code == 403

    r = client.post("/agents/helper/fund", json={"amount": "2"}, headers=h["bob"])
    assert r.status_code == 200, r.text  # anyone may fund it
    wallet = client.get("/agents/helper/wallet", headers=h["alice"]).json()
    assert wallet["wallet"] == doc["wallet"] and wallet["available"] == str(2 * OPEN)
    assert client.get("/agents/helper/wallet", headers=h["operator"]).status_code == 200

    r = client.put("/agents/helper/price", json={"price": "0.25"}, headers=h["bob"])
    assert r.status_code == 403
    r = client.put("/agents/helper/price", json={"price": "0.25"}, headers=h["alice"])
    assert r.status_code == 200 and r.json()["price"] == str(OPEN // 4)
    r = client.post("/agents/helper/pause", json={}, headers=h["alice"])
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.post("/agents/helper/pause", json={}, headers=h["alice"]).status_code == 409
    assert client.post("/agents/helper/resume", json={}, headers=h["alice"]).json()["active"]


def test_bad_input_is_refused_with_the_field(api: Any) -> None:
    node, client, h = api
    cases = [
        ({"name": "a1", "model": "ghost"}, 404, "model"),
        ({"name": "a1", "model": "m1", "temperature": 3}, 422, "temperature"),
        ({"name": "a1", "model": "m1", "calls": ["agent/a1"]}, 422, "calls"),
        ({"name": "a1", "model": "m1", "price": "lots"}, 422, "price"),
        ({"name": "A 1", "model": "m1"}, 422, "name"),
    ]
    for body, status, field in cases:
        r = client.post("/agents", json=body, headers=h["alice"])
        assert r.status_code == status, (body, r.text)
        assert r.json()["field"] == field and r.json()["fix"], body
    assert client.get("/agents").json()["total"] == 0
    assert (
        client.post("/agents/ghost/fund", json={"amount": "2"}, headers=h["alice"]).status_code
        == 404
    )


def test_a_wallets_key_gets_its_writes_prepared(api: Any) -> None:
    """An account the node holds no key of: the node prepares, the wallet signs and sends,
    the node records once it checked the mined transactions."""
    node, client, h = api
    me = Account.create()
    node.client.rpc("anvil_setBalance", [me.address, hex(10**19)])
    node.contracts.token.transfer(node.accounts.signer("alice"), me.address, 10 * OPEN)
    key = node.api_keys.create(me.address, "wallet", "read,write")["key"]
    auth = {"Authorization": f"Bearer {key}"}
    w3 = node.client.w3

    def write(path: str, body: dict[str, Any], labels: list[str]) -> dict[str, Any]:
        r = client.post(path, json=body, headers=auth)
        assert r.status_code in (200, 201), r.text
        prepared = r.json()["wallet"]
        assert [t["label"] for t in prepared["txs"]] == labels
        hashes = []
        for tx in prepared["txs"]:
            nonce = w3.eth.get_transaction_count(me.address)
            send = {
                "to": Web3.to_checksum_address(tx["to"]),
                "data": tx["data"],
                "value": 0,
                "chainId": int(tx["chainId"], 16),
                "gas": 2_000_000,
                "nonce": nonce,
                "gasPrice": 10**10,
            }
            raw = me.sign_transaction(send).raw_transaction
            tx_hash = w3.eth.send_raw_transaction(raw)
            assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
            hashes.append("0x" + bytes(tx_hash).hex().removeprefix("0x"))
        done = client.post(
            "/wallet/submit", headers=auth, json={"pending": prepared["pending"], "hashes": hashes}
        )
        assert done.status_code == 200, done.text
        return done.json()

    doc = write("/agents", {"name": "mine", "model": "m1", "price": "1"}, ["registerAgent"])
    assert doc["owner"] == me.address and doc["wallet"] is not None
    assert node.contracts.agents.agent(doc["id"]).owner == me.address
    funded = write("/agents/mine/fund", {"amount": "3"}, ["approve", "depositFor"])
    assert funded["available"] == str(3 * OPEN)
    assert write("/agents/mine/pause", {}, ["setActive"])["active"] is False
    r = client.put("/agents/mine/price", json={"price": "2"}, headers=auth)
    assert [t["label"] for t in r.json()["wallet"]["txs"]] == ["setPrice"]


def test_an_agents_wallet_and_activity_are_its_owners_to_read(api: Any) -> None:
    """AgentService.wallet_for, activity_for and shows_wallet: the checks both faces ask."""
    from openledger.auth.principal import SCOPES, Principal
    from openledger.errors import ForbiddenError

    node, client, h = api
    body = {"name": "helper", "model": "m1", "as": "alice"}
    assert client.post("/agents", json=body, headers=h["operator"]).status_code == 201

    def who(kind: str, name: str) -> Principal:
        address = node.accounts.address(name)
        return Principal(kind=kind, address=address, account=name, scopes=frozenset(SCOPES))

    alice, bob, operator = who("session", "alice"), who("key", "bob"), who("operator", "operator")
    agent = node.agents.get("helper")
    assert node.agents.wallet_for("helper", alice) == node.agents.wallet("helper")
    assert node.agents.wallet_for("helper", operator)["wallet"] == agent["wallet"]
    with pytest.raises(ForbiddenError) as err:
        node.agents.wallet_for("helper", bob)
    assert "cannot read for agent/helper's wallet" in err.value.message
    activity = node.agents.activity_for("agent/helper", alice)
    assert activity == {**node.agents.activity("helper"), "wallet": agent["wallet"]}
    with pytest.raises(ForbiddenError) as err:
        node.agents.activity_for("helper", bob)
    assert "cannot read for agent/helper's activity" in err.value.message
    listed = node.agents.list()["items"][0]
    assert node.agents.shows_wallet(listed, alice) and node.agents.shows_wallet(listed, operator)
    assert not node.agents.shows_wallet(listed, bob)
    assert not node.agents.shows_wallet({**listed, "wallet": None}, alice)
