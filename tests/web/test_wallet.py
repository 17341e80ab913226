"""Writes from a browser wallet over HTTP (web/wallet.py): the node prepares unsigned
transactions, the wallet sends them, the node checks the reported hashes (mined, succeeded,
from the signed-in account, to the prepared contract with the prepared calldata) and only
then records the off-chain side. A reverted transaction, one from another account and one to
another contract are each refused with a message, and nothing is recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openledger.api.app import create_app
from openledger.datanets.manifest import verify_manifest
from openledger.node import Node
from openledger.store.datanet_tables import ContributionRow
from openledger.units import OPEN
from tests.conftest import World
from tests.web.injected import TestWallet

pytestmark = pytest.mark.anvil
WEB = {"X-OpenLedger-Web": "1"}
TEXT = "Wasps can recognise the faces of other wasps."


@pytest.fixture
def wallet(world: World, chain: Node) -> TestWallet:
    w = TestWallet(world.node)
    w.fund(chain)
    return w


@pytest.fixture
def client(world: World, wallet: TestWallet) -> Iterator[TestClient]:
    with TestClient(create_app(world.node), base_url="http://127.0.0.1:8000") as c:
        text = c.post("/web/auth/message", json={"address": wallet.address},
                      headers=WEB).json()["message"]  # fmt: skip
        sig = wallet.account.sign_message(encode_defunct(text=text)).signature.hex()
        r = c.post("/web/auth/verify", json={"message": text, "signature": sig}, headers=WEB)
        assert r.status_code == 200 and r.json()["session"]["dev"] is None
        yield c


def _rows(world: World) -> int:
    with world.node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ContributionRow)) or 0)


def _prepare_contribution(client: TestClient, world: World) -> dict[str, Any]:
    r = client.post("/web/api/datanets/facts/contributions", headers=WEB,
                    files={"files": ("wasps.txt", TEXT.encode())},
                    data={"stake": "12"})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["wallet"]


def _submit(client: TestClient, w: dict[str, Any], hashes: list[str], signature: Any = None
            ) -> Any:  # fmt: skip
    return client.post("/web/api/wallet/submit", headers=WEB,
                       json={"pending": w["pending"], "hashes": hashes,
                             "signature": signature})  # fmt: skip


def test_contribute_from_the_wallet(client: TestClient, world: World,
                                    wallet: TestWallet) -> None:  # fmt: skip
    before = _rows(world)
    w = _prepare_contribution(client, world)
    assert [t["label"] for t in w["txs"]] == ["approve", "contribute"]  # the stake's approve
    assert {t["from"] for t in w["txs"]} == {wallet.address}
    assert w["txs"][1]["to"] == world.node.contracts.datanets.address
    assert _rows(world) == before  # nothing recorded before the transactions are mined
    signature = wallet.personal_sign(w["sign"])
    hashes = [wallet.send(t) for t in w["txs"]]
    r = _submit(client, w, hashes, signature)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["contributor"] == wallet.address and out["tx_hash"] == hashes[1]
    on_chain = world.node.contracts.datanets.contribution(out["contribution_id"])
    assert (on_chain.contributor, on_chain.stake) == (wallet.address, 12 * OPEN)
    with world.node.db.session() as s:
        row = s.scalar(select(ContributionRow).where(
            ContributionRow.chain_id == out["contribution_id"]))  # fmt: skip
        assert (row.contributor, row.stake, row.tx_hash) == (wallet.address, 12 * OPEN, hashes[1])
        envelope = json.loads(world.node.blobs.get(row.manifest_sha))
    assert envelope["signature"] == signature  # the manifest, signed by the wallet
    assert verify_manifest(envelope["manifest"], envelope["signature"])
    # the write is done: reporting again finds nothing waiting
    again = _submit(client, w, hashes, signature)
    assert again.status_code == 404 and "No prepared write" in again.json()["message"]


def test_a_reverted_transaction_is_refused(client: TestClient, world: World,
                                           wallet: TestWallet) -> None:  # fmt: skip
    before = _rows(world)
    w = _prepare_contribution(client, world)
    signature = wallet.personal_sign(w["sign"])
    approve = wallet.send(w["txs"][0])
    registry = world.node.contracts.datanets.address
    token = world.node.contracts.token
    # the allowance taken back before the contribute is mined: it reverts on chain
    wallet.send({"to": token.address,
                 "data": token.contract.encode_abi("approve", args=[registry, 0])})  # fmt: skip
    reverted = wallet.send(w["txs"][1], gas=400_000)
    r = _submit(client, w, [approve, reverted], signature)
    assert r.status_code == 409, r.text
    assert r.json()["message"] == (f"The contribute transaction {reverted} reverted on chain; "
                                   "nothing was recorded.")  # fmt: skip
    assert _rows(world) == before
    # the write still waits: sent again, properly, it is recorded
    hashes = [wallet.send(t) for t in w["txs"]]
    assert _submit(client, w, hashes, signature).status_code == 200
    assert _rows(world) == before + 1


def test_a_transaction_from_another_account_is_refused(client: TestClient, world: World,
                                                       wallet: TestWallet) -> None:  # fmt: skip
    before = _rows(world)
    w = _prepare_contribution(client, world)
    approve = wallet.send(w["txs"][0])
    bob = world.node.accounts.signer("bob")
    theirs = wallet.send(w["txs"][1], gas=400_000, signer=bob)  # the same call, bob's key
    r = _submit(client, w, [approve, theirs], wallet.personal_sign(w["sign"]))
    assert r.status_code == 401, r.text
    assert r.json()["message"] == (f"The contribute transaction {theirs} was sent by "
                                   f"{bob.address}, not by the signed-in account "
                                   f"{wallet.address}.")  # fmt: skip
    assert _rows(world) == before


def test_a_transaction_to_another_contract_is_refused(client: TestClient, world: World,
                                                      wallet: TestWallet) -> None:  # fmt: skip
    before = _rows(world)
    w = _prepare_contribution(client, world)
    approve = wallet.send(w["txs"][0])
    escrow = world.node.contracts.escrow.address
    elsewhere = wallet.send({**w["txs"][1], "to": escrow}, gas=400_000)
    r = _submit(client, w, [approve, elsewhere], wallet.personal_sign(w["sign"]))
    assert r.status_code == 422, r.text
    msg = r.json()["message"]
    assert msg.startswith(f"The contribute transaction {elsewhere} was sent to {escrow}, not "
                          "the prepared contribute call to the DatanetRegistry")  # fmt: skip
    assert _rows(world) == before
    # a manifest signed by another key is refused too
    bob = world.node.accounts.signer("bob")
    forged = "0x" + bob.sign_message(encode_defunct(hexstr=w["sign"])).signature.hex()
    contribute = wallet.send(w["txs"][1])
    r = _submit(client, w, [approve, contribute], forged)
    assert r.status_code == 401 and f"is {bob.address}'s" in r.json()["message"]
    assert _rows(world) == before


def test_deposit_and_delegate_from_the_wallet(client: TestClient, world: World,
                                              wallet: TestWallet) -> None:  # fmt: skip
    node = world.node
    r = client.post("/web/api/deposit", json={"amount": "5"}, headers=WEB)
    w = r.json()["wallet"]
    assert [t["label"] for t in w["txs"]] == ["approve", "deposit"] and w["sign"] is None
    assert node.ledger.credit(wallet.address)["available"] == "0"
    r = _submit(client, w, [wallet.send(t) for t in w["txs"]])
    assert r.status_code == 200, r.text
    assert r.json()["available"] == str(5 * OPEN)  # synced: usable at once
    assert node.contracts.escrow.balance_of(wallet.address) == 5 * OPEN
    # a check the service makes before sending is said at once, with nothing to send
    r = client.post("/web/api/deposit", json={"amount": "100000"}, headers=WEB)
    assert r.status_code == 422 and "less than the" in r.json()["message"]

    w = client.post("/web/api/governance/delegate", json={"delegatee": ""},
                    headers=WEB).json()["wallet"]  # fmt: skip
    assert [t["label"] for t in w["txs"]] == ["delegate"]
    r = _submit(client, w, [wallet.send(t) for t in w["txs"]])
    assert r.status_code == 200, r.text
    assert r.json()["delegatee"] == wallet.address
    assert node.contracts.token.get_votes(wallet.address) == node.contracts.token.balance_of(
        wallet.address
    )
