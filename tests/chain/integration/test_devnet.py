"""The embedded devnet against the real pinned anvil."""

from pathlib import Path

import pytest

from openledger.chain.deploy import Addresses
from openledger.config import Settings
from openledger.errors import DevnetError
from openledger.home import init_home
from openledger.node import DEV_OPEN_GRANT, Node
from tests.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.anvil


def test_state_survives_down_and_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    init_home(settings, PASSWORD)
    node = Node(settings, password_source=lambda: PASSWORD)
    try:
        first = node.chain_up()
        assert first.deployed_now and first.status.running
        alice = node.accounts.signer("alice")
        bob = node.accounts.address("bob")
        assert node.contracts.token.balance_of(bob) == DEV_OPEN_GRANT
        node.contracts.token.transfer(alice, bob, 123)
        block = node.client.block_number()
        assert node.devnet.down() is True
        assert not node.devnet.status().running

        again = Node(settings, password_source=lambda: PASSWORD)
        second = again.chain_up()
        assert not second.deployed_now  # found, not redeployed
        assert second.addresses == Addresses.load(settings.addresses_path) == first.addresses
        assert again.contracts.token.balance_of(bob) == DEV_OPEN_GRANT + 123
        assert again.client.block_number() >= block
        # logs from before the restart are still there (event sync depends on it)
        logs = again.client.w3.eth.get_logs(
            {"fromBlock": 0, "toBlock": "latest", "address": again.contracts.token.address}
        )
        assert len(logs) >= len(again.accounts.names())
    finally:
        Node(settings).devnet.down()


def test_up_is_idempotent_and_status_reports(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    init_home(settings, PASSWORD)
    node = Node(settings, password_source=lambda: PASSWORD)
    try:
        a = node.chain_up()
        b = node.chain_up()
        assert a.status.pid == b.status.pid and not b.deployed_now
        st = node.devnet.status()
        assert st.chain_id == 31337 and st.block_number is not None
    finally:
        node.devnet.down()
    assert node.devnet.down() is False


def test_port_taken_by_another_chain(devnet_node: Node, tmp_path: Path) -> None:
    other = Settings.load(
        env={
            "OPENLEDGER_HOME": str(tmp_path / "other"),
            "OPENLEDGER_CHAIN_PORT": str(devnet_node.settings.chain_port),
        }
    )
    init_home(other, PASSWORD)
    with pytest.raises(DevnetError) as err:
        Node(other).devnet.up()
    assert "already serves" in err.value.message and err.value.field == "OPENLEDGER_CHAIN_PORT"


def test_external_chain_has_no_devnet(tmp_path: Path) -> None:
    s = Settings.load(
        env={"OPENLEDGER_HOME": str(tmp_path), "OPENLEDGER_CHAIN_URL": "http://127.0.0.1:1"}
    )
    with pytest.raises(DevnetError):
        Node(s).devnet.up()
