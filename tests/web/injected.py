"""A faithful wallet for the tests: a key of its own, funded from the operator; it signs
``personal_sign`` with eth_account and signs and sends ``eth_sendTransaction`` itself (raw,
to the devnet), returning the hash as a browser wallet does, without waiting for it."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3

from openledger.node import Node
from openledger.units import OPEN


class TestWallet:
    __test__ = False

    def __init__(self, node: Node, key: str = "0x" + "5a" * 32) -> None:
        self.node = node
        self.account: LocalAccount = Account.from_key(key)
        self.address = self.account.address

    def fund(self, chain: Node, open_: int = 1_000 * OPEN, eth: int = 10 * 10**18) -> None:
        """OPEN and ETH for gas, both sent by the operator that deployed the devnet
        (``chain``: the node that started it; it holds the OPEN not granted)."""
        operator = chain.accounts.signer("operator")
        chain.client.transfer_eth(operator, self.address, eth)
        chain.contracts.token.transfer(operator, self.address, open_)

    def personal_sign(self, data: str) -> str:
        """EIP-191 over ``data``: 0x-hex bytes (as the page sends a manifest) or text."""
        hexed = data.startswith("0x")
        msg = encode_defunct(hexstr=data) if hexed else encode_defunct(text=data)
        return "0x" + self.account.sign_message(msg).signature.hex().removeprefix("0x")

    def send(
        self, tx: dict[str, Any], *, gas: int | None = None, signer: LocalAccount | None = None
    ) -> str:
        """Sign and send ``tx`` (an eth_sendTransaction parameter) and wait until it is mined;
        its hash. ``gas`` fixed sends even what would revert; ``signer`` sends it from another
        account."""
        who = signer or self.account
        w3 = self.node.client.w3
        value = tx.get("value", 0)
        body: dict[str, Any] = {
            "from": who.address,
            "to": Web3.to_checksum_address(tx["to"]),
            "data": tx.get("data", "0x"),
            "value": int(value, 16) if isinstance(value, str) else int(value),
        }
        body["gas"] = gas or int(w3.eth.estimate_gas(body) * 1.3) + 10_000
        body["nonce"] = w3.eth.get_transaction_count(who.address, "pending")
        body["chainId"] = self.node.settings.chain_id
        base = w3.eth.get_block("latest")["baseFeePerGas"]
        body["maxFeePerGas"], body["maxPriorityFeePerGas"] = 2 * base + 10**9, 10**9
        del body["from"]
        raw = who.sign_transaction(body).raw_transaction
        sent = w3.eth.send_raw_transaction(raw)
        # as the page waits before its next transaction: anvil's automine may answer first,
        # and a deposit estimated before its approve is mined reverts
        w3.eth.wait_for_transaction_receipt(sent, timeout=60, poll_latency=0.05)
        return "0x" + sent.hex().removeprefix("0x")

    def request(self, method: str, params: list[Any]) -> Any:
        """An EIP-1193 ``request`` as the page makes it."""
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.address.lower()]
        if method == "eth_chainId":
            return hex(self.node.settings.chain_id)
        if method == "personal_sign":
            assert params[1].lower() == self.address.lower(), params
            return self.personal_sign(params[0])
        if method == "eth_sendTransaction":
            assert params[0]["from"].lower() == self.address.lower(), params
            return self.send(params[0])
        return self.node.client.rpc(method, params)
