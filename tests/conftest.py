"""Shared fixtures: node homes, a real anvil devnet with deployed contracts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import parallel  # on an xdist worker, limits torch's threads: before torch loads

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import func, select

from openledger.config import Settings
from openledger.home import init_home
from openledger.node import Node
from openledger.store.datanet_tables import ContributionRow, RecordRow
from openledger.units import OPEN

if TYPE_CHECKING:
    from tests.market import Market

PASSWORD = "correct horse battery staple"

#: ``make test-thorough`` (OPENLEDGER_TEST_THOROUGH=1): the contracts' state machines and the
#: API fuzzing draw several times more examples than the suite's default run.
THOROUGH = os.environ.get("OPENLEDGER_TEST_THOROUGH") == "1"


def free_port() -> int:
    """A free port on 127.0.0.1 (on an xdist worker, never one another worker gets)."""
    return parallel.free_port()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    parallel.order_and_group(items)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    return parallel.make_scheduler(config, log)


def operator_headers(node: Node) -> dict[str, str]:
    """The operator token of ``node``'s home as an Authorization header (``init`` wrote it):
    what a request needs to name one of the node's own accounts with ``"as"``."""
    from openledger.auth.operator_token import read_token

    return {"Authorization": f"Bearer {read_token(node.settings.home)}"}


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


@pytest.fixture
def dnode(chain: Node, tmp_path: Path) -> Node:
    home = tmp_path / "home"
    settings = replace(
        chain.settings,
        home=home,
        db_url=f"sqlite:///{home / 'openledger.db'}",
        addresses_file=chain.settings.addresses_path,
    )
    init_home(settings, PASSWORD)
    node = Node(settings, password_source=lambda: PASSWORD)
    yield node
    node.close()


@dataclass
class World:
    node: Node
    datanet: str
    write: Callable[[str, str], Path]

    def footprint(self) -> tuple[int, int, int, list[str]]:
        """(contributions, records, alice's nonce, blobs): what a rejection must not change."""
        with self.node.db.session() as s:
            contributions = s.scalar(select(func.count()).select_from(ContributionRow))
            records = s.scalar(select(func.count()).select_from(RecordRow))
        nonce = self.node.client.w3.eth.get_transaction_count(self.node.accounts.address("alice"))
        return contributions, records, nonce, sorted(self.node.blobs.iter_hashes())


@pytest.fixture
def world(dnode: Node, tmp_path: Path) -> World:
    """Datanet 'facts' owned by the dev account dave; validators bob and carol
    (quorum 2), min stake 10 OPEN."""
    acc = dnode.accounts
    dnode.datanets.create(
        "facts",
        description="short factual paragraphs",
        validators=[acc.address("bob"), acc.address("carol")],
        quorum=2,
        min_stake=10 * OPEN,
        signer=acc.signer("dave"),
    )
    files = tmp_path / "files"
    files.mkdir()

    def write(name: str, text: str) -> Path:
        path = files / name
        path.write_text(text, encoding="utf-8")
        return path

    return World(dnode, "facts", write)


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny base directory (shared by the session: do not modify it).

    ``load_base`` loads it like a real model: a Llama with q/k/v/o, gate/up/down
    projections and a tied lm_head, at a small size (tests/tiny.py).
    """
    from openledger.factory.tiny_base import build_tiny_base
    from tests.tiny import TEST_TINY_CONFIG, small_corpus

    out = tmp_path_factory.mktemp("tiny-base") / "model"
    return build_tiny_base(out, TEST_TINY_CONFIG, corpus=small_corpus(), progress=False)


@pytest.fixture(scope="session")
def adapters_dir(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 adapters ``ad0`` … ``ad15``: ranks 2/4/8/16, four module sets, some rsLoRA."""
    from tests import tiny

    root = tmp_path_factory.mktemp("adapters")
    for i in range(16):
        tiny.make_adapter(
            tiny_base_dir,
            root / f"ad{i}",
            rank=tiny.RANKS[i % 4],
            modules=tiny.MODULE_SETS[(i // 4) % 4],
            seed=100 + i,
            alpha=2 * tiny.RANKS[i % 4] + i,
            rslora=i % 3 == 0,
        )
    return root


@pytest.fixture
def market(world: World, chain: Node) -> Market:
    """A priced model over a real 'facts' snapshot (alice, erin, frank approved; one of
    frank's rejected and slashed) and grace's synced 100 OPEN of credit (tests/market.py)."""
    from tests.market import build_market

    return build_market(world, chain)
