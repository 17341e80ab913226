"""OPENLEDGER_CHAIN_URL + an addresses file point a node at any EVM chain (here: another
node's anvil, reached only over JSON-RPC)."""

from pathlib import Path

import pytest

from openledger.cli.main import main
from openledger.config import Settings
from openledger.errors import DevnetError, WrongChainError
from openledger.home import init_home
from openledger.node import Node
from tests.conftest import PASSWORD

pytestmark = pytest.mark.anvil


def _external(devnet_node: Node, home: Path, **extra: str) -> Settings:
    env = {
        "OPENLEDGER_HOME": str(home),
        "OPENLEDGER_CHAIN_URL": devnet_node.settings.rpc_url,
        "OPENLEDGER_ADDRESSES": str(devnet_node.settings.addresses_path),
        **extra,
    }
    return Settings.load(env=env)


def test_node_on_an_external_chain(devnet_node: Node, tmp_path: Path) -> None:
    settings = _external(devnet_node, tmp_path / "ext")
    init_home(settings, PASSWORD)
    node = Node(settings)
    assert not settings.is_devnet
    assert node.contracts.token.total_supply() == devnet_node.contracts.token.total_supply()
    assert node.contracts.addresses == devnet_node.contracts.addresses
    with pytest.raises(DevnetError):
        node.devnet.up()


def test_cli_status_on_external_chain(
    devnet_node: Node,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = _external(devnet_node, tmp_path / "ext")
    init_home(settings, PASSWORD)
    monkeypatch.setenv("OPENLEDGER_HOME", str(settings.home))
    monkeypatch.setenv("OPENLEDGER_CHAIN_URL", devnet_node.settings.rpc_url)
    monkeypatch.setenv("OPENLEDGER_ADDRESSES", str(devnet_node.settings.addresses_path))
    assert main(["chain", "status"]) == 0
    out = capsys.readouterr().out
    assert devnet_node.contracts.addresses.contracts["OpenToken"] in out


def test_addresses_of_another_chain_id(devnet_node: Node, tmp_path: Path) -> None:
    settings = _external(devnet_node, tmp_path / "ext", OPENLEDGER_CHAIN_ID="10")
    with pytest.raises(WrongChainError):
        Node(settings).client.check()
