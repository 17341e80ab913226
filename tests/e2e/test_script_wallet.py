"""A program with its own key, against a node on the devnet over HTTP: it signs in with
SIWE, makes itself an API key with the write scope, and then creates a datanet,
contributes, reviews, delegates, votes and claims through prepare → sign → submit. The node
never holds its key: each write comes back as unsigned transactions (and a message to sign),
the program signs and sends them to the chain itself and reports the hashes; the node
records each write only after checking them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from openledger.app import create_app
from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.governance.devnet import advance_devnet_clock
from openledger.node import Node
from openledger.units import OPEN
from tests.conftest import free_port, operator_headers
from tests.ledger.settlement.test_epochs import fast_forward
from tests.market import Market
from tests.servers import serve_in_thread
from tests.web.injected import TestWallet

pytestmark = pytest.mark.anvil
KEY = "0x" + "5c" * 32
NOTE = (
    "Sea otters hold hands while they sleep on the water, so that the current does not "
    "carry them apart from their group during the night."
)


class Script:
    """What a user's program holds: the node's URL, its own private key, the chain's RPC."""

    def __init__(self, url: str, rpc_url: str, chain_id: int) -> None:
        self.account = Account.from_key(KEY)
        self.address = self.account.address
        self.http = httpx.Client(base_url=url, timeout=60)
        self.w3 = Web3(Web3.HTTPProvider(rpc_url))
        self.chain_id = chain_id
        self.sent: list[str] = []

    def api_key(self) -> None:
        """Sign in with SIWE (the web app's endpoints, no browser) and make an API key."""
        web = {"X-OpenLedger-Web": "1"}
        text = self.http.post(
            "/web/auth/message", json={"address": self.address}, headers=web
        ).json()["message"]
        sig = self.account.sign_message(encode_defunct(text=text)).signature.hex()
        r = self.http.post(
            "/web/auth/verify", json={"message": text, "signature": sig}, headers=web
        )
        assert r.status_code == 200, r.text
        scopes = ["inference", "read", "write"]
        r = self.http.post("/web/api/keys", headers=web, json={"label": "script", "scopes": scopes})
        assert r.status_code == 201, r.text
        self.http.cookies.clear()  # from here on, the key only
        self.http.headers["Authorization"] = f"Bearer {r.json()['key']}"

    def write(self, method: str, path: str, labels: list[str], **kw: Any) -> dict[str, Any]:
        """One write: prepared by the node, signed and sent here, reported back."""
        r = self.http.request(method, path, **kw)
        assert r.status_code in (200, 201), r.text
        prepared = r.json()["wallet"]
        assert [t["label"] for t in prepared["txs"]] == labels
        signature = None
        if prepared["sign"] is not None:
            signed = self.account.sign_message(encode_defunct(hexstr=prepared["sign"]))
            signature = "0x" + signed.signature.hex().removeprefix("0x")
        hashes = [self.send(tx) for tx in prepared["txs"]]
        report = {"pending": prepared["pending"], "hashes": hashes, "signature": signature}
        done = self.http.post("/wallet/submit", json=report)
        assert done.status_code == 200, done.text
        return done.json()

    def send(self, tx: dict[str, Any]) -> str:
        assert tx["from"] == self.address and int(tx["chainId"], 16) == self.chain_id
        body: dict[str, Any] = {
            "from": self.address,
            "to": Web3.to_checksum_address(tx["to"]),
            "data": tx["data"],
            "value": int(tx["value"], 16),
        }
        body["gas"] = int(self.w3.eth.estimate_gas(body) * 1.3) + 10_000
        body["nonce"] = self.w3.eth.get_transaction_count(self.address, "pending")
        base = self.w3.eth.get_block("latest")["baseFeePerGas"]
        body.update(
            chainId=self.chain_id, maxFeePerGas=2 * base + 10**9, maxPriorityFeePerGas=10**9
        )
        del body["from"]
        raw = self.account.sign_transaction(body).raw_transaction
        tx_hash = self.w3.eth.send_raw_transaction(raw)
        assert self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1
        self.sent.append("0x" + bytes(tx_hash).hex().removeprefix("0x"))
        return self.sent[-1]


@contextmanager
def serving(node: Node) -> Iterator[str]:
    port = free_port()
    node.settings = replace(node.settings, api_port=port)  # its origin for sign-ins
    with serve_in_thread(create_app(node), port=port) as url:
        yield url


def test_a_script_with_its_own_key_contributes_reviews_votes_and_claims(
    market: Market, chain: Node
) -> None:
    node = market.node
    TestWallet(node, KEY).fund(chain)  # OPEN and gas, from the devnet's operator
    op = operator_headers(node)
    with serving(node) as url:
        me = Script(url, node.settings.rpc_url, node.settings.chain_id)
        me.api_key()
        nonce = me.w3.eth.get_transaction_count(me.address)

        # a datanet of its own, with itself as the validator
        spec = {
            "name": "scripted",
            "validators": [me.address],
            "quorum": 1,
            "min_stake": "10",
            "description": "reviewed by a script",
        }
        made = me.write("POST", "/datanets", ["createDatanet"], json=spec)
        assert made["name"] == "scripted" and made["owner"] == me.address
        # alice contributes to it (the operator token names a dev account: the node signs)
        r = me.http.post(
            "/datanets/scripted/contributions",
            headers=op,
            files=[("files", ("bees.txt", NOTE.replace("otters", "beavers")))],
            data={"stake": "10", "as": "alice"},
        )
        assert r.status_code == 201, r.text
        theirs = r.json()["contribution_id"]
        # the script reviews it
        reviewed = me.write(
            "POST",
            f"/datanets/scripted/contributions/{theirs}/reviews",
            ["review"],
            json={"approve": True},
        )
        assert reviewed["status"] == "approved"
        assert node.contracts.datanets.contribution(theirs).status == 1  # approved on chain

        # it contributes to 'facts': approve + contribute, and the manifest signed by its key
        mine = me.write(
            "POST",
            "/datanets/facts/contributions",
            ["approve", "contribute"],
            files=[("files", ("otters.txt", NOTE))],
            data={"stake": "12"},
        )
        cid = mine["contribution_id"]
        on_chain = node.contracts.datanets.contribution(cid)
        assert (on_chain.contributor, on_chain.stake) == (me.address, 12 * OPEN)
        assert mine["contributor"] == me.address and mine["signature"].startswith("0x")
        for v in ("bob", "carol"):
            r = me.http.post(
                f"/datanets/facts/contributions/{cid}/reviews",
                headers=op,
                json={"as": v, "approve": True},
            )
            assert r.status_code == 200, r.text

        # governance: it delegates to itself, alice proposes, it votes with its own key
        me.write("POST", "/governance/delegate", ["delegate"], json={"delegatee": me.address})
        r = me.http.post(
            "/governance/delegate", headers=op, json={"as": "alice", "delegatee": "alice"}
        )
        assert r.status_code == 200, r.text
        advance_devnet_clock(node.client, 1)
        r = me.http.post(
            "/governance/proposals",
            headers=op,
            json={"as": "alice", "set": {"slash_bps": "4000"}, "description": "slash 40 %"},
        )
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        advance_devnet_clock(node.client, CFG.voting_delay + 1)
        voted = me.write(
            "POST", f"/governance/proposals/{pid}/votes", ["castVote"], json={"support": "for"}
        )
        weight = node.contracts.token.get_votes(me.address)
        assert int(voted["weight"]) == weight > 0 and int(voted["votes"]["for"]) >= weight

        # its contribution is in the next snapshot; a paid model trained on it earns it a
        # share of the unattributed fees; the epoch is settled and it claims
        r = me.http.post("/datanets/facts/snapshots", headers=op, json={"as": "dave"})
        assert r.status_code == 201, r.text
        model = {**market.model, "snapshot_roots": [r.json()["root"]]}
        for i in range(3):
            hold = node.ledger.reserve(market.user, model, 40, 30)
            node.ledger.charge(hold, 30, request_hash=f"0x{i:064x}", attribution=None)
        node.epochs.close()
        fast_forward(node)  # the root's activation delay
        claimable = int(me.http.get(f"/rewards/{me.address}").json()["claimable"]["claimable"])
        assert claimable > 0
        before = node.contracts.token.balance_of(me.address)
        claimed = me.write("POST", "/rewards/claim", ["claim"], json={})
        after = node.contracts.token.balance_of(me.address)
        assert after - before == claimable == int(claimed["paid"])
        assert int(me.http.get(f"/rewards/{me.address}").json()["claimable"]["claimable"]) == 0

        # every transaction of its writes was its own; the node sent none for it
        assert me.w3.eth.get_transaction_count(me.address) == nonce + len(me.sent) == nonce + 7
        assert node.prepared.waiting(me.address) == []
