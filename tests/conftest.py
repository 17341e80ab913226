"""Shared fixtures: node homes, a real anvil devnet with deployed contracts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from openledger.config import Settings  # noqa: E402
from openledger.home import init_home  # noqa: E402
from openledger.node import Node  # noqa: E402

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(home: Path, **overrides: object) -> Settings:
    env = {"OPENLEDGER_HOME": str(home), "OPENLEDGER_CHAIN_PORT": str(free_port())}
    return Settings.load(env=env, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def home(settings: Settings) -> Settings:
    """An initialised node home (keystore, dev accounts, migrated store), no chain."""
    init_home(settings, PASSWORD)
    return settings


@pytest.fixture(scope="session")
def devnet_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One anvil devnet with the contracts deployed, shared by the session's tests.

    Tests that change chain state use the ``chain`` fixture, which reverts to a snapshot.
    """
    settings = make_settings(tmp_path_factory.mktemp("devnet") / "home")
    init_home(settings, PASSWORD)
    node = Node(settings, password_source=lambda: PASSWORD)
    node.chain_up()
    try:
        yield node
    finally:
        node.devnet.down()
        node.close()


@pytest.fixture
def chain(devnet_node: Node) -> Iterator[Node]:
    """The shared devnet node, with every chain change rolled back after the test."""
    snapshot = devnet_node.client.rpc("evm_snapshot")
    try:
        yield devnet_node
    finally:
        devnet_node.client.rpc("evm_revert", [snapshot])
