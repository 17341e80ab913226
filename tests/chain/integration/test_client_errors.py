"""Every chain failure a user can meet becomes an openledger.errors type with a fix."""

from dataclasses import replace
from pathlib import Path

import pytest

from openledger.chain.client import ChainClient
from openledger.chain.deploy import Addresses, Contracts
from openledger.errors import (
    ChainUnreachableError,
    ContractNotDeployedError,
    InsufficientFundsError,
    KeystoreError,
    TransactionRevertedError,
    WrongChainError,
)
from openledger.node import Node
from tests.conftest import free_port

pytestmark = pytest.mark.anvil


def test_unreachable_rpc() -> None:
    client = ChainClient(f"http://127.0.0.1:{free_port()}", chain_id=31337, timeout=2)
    with pytest.raises(ChainUnreachableError) as err:
        client.check()
    assert "openledger chain up" in err.value.fix


def test_wrong_chain_id(devnet_node: Node) -> None:
    client = ChainClient(devnet_node.settings.rpc_url, chain_id=8453)
    with pytest.raises(WrongChainError) as err:
        client.check()
    assert "31337" in err.value.message and "8453" in err.value.message


def test_contracts_not_deployed_at_configured_addresses(devnet_node: Node, tmp_path: Path) -> None:
    real = devnet_node.contracts.addresses
    fake = replace(real, contracts={**real.contracts, "ModelRegistry": "0x" + "ab" * 20})
    with pytest.raises(ContractNotDeployedError) as err:
        Contracts(devnet_node.client, fake)
    assert "ModelRegistry" in err.value.message
    with pytest.raises(ContractNotDeployedError):
        Addresses.load(tmp_path / "missing.json")


def test_insufficient_balance(chain: Node) -> None:
    alice = chain.accounts.signer("alice")
    too_much = chain.contracts.token.balance_of(alice.address) + 1
    with pytest.raises(InsufficientFundsError) as err:
        chain.contracts.token.transfer(alice, chain.accounts.address("bob"), too_much)
    assert err.value.http_status == 402 and "balance" in err.value.fix


def test_insufficient_allowance(chain: Node) -> None:
    alice = chain.accounts.signer("alice")
    escrow = chain.contracts.escrow
    with pytest.raises(InsufficientFundsError) as err:
        escrow.deposit(alice, 10**18)
    assert "approve" in err.value.fix
    assert escrow.balance_of(alice.address) == 0


def test_reverted_transaction_has_the_reason(chain: Node) -> None:
    alice = chain.accounts.signer("alice")
    with pytest.raises(TransactionRevertedError) as err:
        chain.contracts.params.set_param(alice, "min_stake", 1)  # not the owner
    assert err.value.reason and "owner" in err.value.reason.lower()


def test_no_eth_for_gas(chain: Node) -> None:
    from eth_account import Account

    broke = Account.create()
    with pytest.raises(InsufficientFundsError):
        chain.contracts.token.approve(broke, chain.accounts.address("bob"), 1)


def test_wrong_keystore_password(devnet_node: Node) -> None:
    node = Node(devnet_node.settings, password_source=lambda: "wrong")
    with pytest.raises(KeystoreError):
        node.accounts.signer("operator")
