"""The devnet is an OP Stack chain: GasPriceOracle and L1Block are where OP chains have them
(code from @eth-optimism/contracts-bedrock), and cost estimates — the node's and those of the
writes it prepares for wallets — include the L1 data fee the oracle charges."""

from __future__ import annotations

from pathlib import Path

import pytest

from openledger.chain.devnet import find_bedrock
from openledger.chain.l2fees import (
    DEVNET_L1,
    GAS_PRICE_ORACLE,
    L1_BLOCK,
    bedrock_artifact,
    estimate_cost,
    l1_fee,
)
from openledger.node import Node

pytestmark = pytest.mark.anvil


def _fjord_fee(client, data: bytes) -> tuple[int, int]:
    """The Fjord rule, recomputed from the oracle's parameters and its L1 gas (the FastLZ
    size estimate × 16, truncated to whole bytes: the tolerance it leaves)."""
    abi = bedrock_artifact(find_bedrock(), "GasPriceOracle")["abi"]
    oracle = client.w3.eth.contract(address=GAS_PRICE_ORACLE, abi=abi)
    l1_gas_used = oracle.functions.getL1GasUsed(data).call()  # (fastlz-estimated size) × 16
    scaled = (
        oracle.functions.baseFeeScalar().call() * 16 * oracle.functions.l1BaseFee().call()
        + oracle.functions.blobBaseFeeScalar().call() * oracle.functions.blobBaseFee().call()
    )
    return l1_gas_used * scaled // (16 * 10**6), scaled // 10**6 + 1


def test_devnet_has_the_op_predeploys_and_estimates_include_the_l1_fee(
    devnet_node: Node,
) -> None:
    client = devnet_node.client
    for address in (GAS_PRICE_ORACLE, L1_BLOCK):
        assert client.rpc("eth_getCode", [address, "latest"]) != "0x"
    abi = bedrock_artifact(find_bedrock(), "L1Block")["abi"]
    block = client.w3.eth.contract(address=L1_BLOCK, abi=abi)
    assert block.functions.basefee().call() == DEVNET_L1["base_fee"]
    assert block.functions.baseFeeScalar().call() == DEVNET_L1["base_fee_scalar"]
    data = bytes(range(256)) * 4
    fee = l1_fee(client, "0x" + data.hex())
    expected, tolerance = _fjord_fee(client, data)
    assert fee > 0 and abs(fee - expected) <= tolerance
    alice, bob = devnet_node.accounts.address("alice"), devnet_node.accounts.address("bob")
    cost = estimate_cost(client, {"from": alice, "to": bob, "data": "0x" + data.hex()})
    assert int(cost["l1_fee"]) == fee and cost["gas"] > 21_000
    assert int(cost["total"]) == int(cost["l2_fee"]) + fee
    assert int(cost["l2_fee"]) == cost["gas"] * int(cost["gas_price"])


def test_prepared_writes_carry_their_costs(devnet_node: Node, tmp_path: Path) -> None:
    from dataclasses import replace

    from openledger.home import init_home
    from tests.conftest import PASSWORD

    home = tmp_path / "home"
    settings = replace(
        devnet_node.settings,
        home=home,
        db_url=f"sqlite:///{home / 'db'}",
        addresses_file=devnet_node.settings.addresses_path,
    )
    init_home(settings, PASSWORD)
    node = Node(settings, password_source=lambda: PASSWORD)
    try:
        dave = node.accounts.address("dave")
        plan = node.datanets.plan_create(
            "fees-test", description="", validators=[dave], quorum=1, min_stake=10**19, owner=dave
        )
        offer = node.prepared.offer(dave, plan)
        assert len(offer["costs"]) == len(offer["txs"]) == 1
        cost = offer["costs"][0]
        assert int(cost["l1_fee"]) == l1_fee(node.client, offer["txs"][0]["data"]) > 0
        assert int(cost["total"]) == int(cost["l2_fee"]) + int(cost["l1_fee"])
    finally:
        node.close()
