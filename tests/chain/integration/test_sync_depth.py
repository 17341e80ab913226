"""The event sync reads at a settable depth (or the safe / finalized tag) and undoes what a
reorganisation removed: anvil's snapshot and revert replace the block of a deposit, and the
credit it gave is gone from the store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from openledger.config import Settings
from openledger.errors import ValidationError
from openledger.metrics import NodeMetrics
from openledger.node import Node
from openledger.store.models import ChainEvent
from openledger.units import OPEN

pytestmark = pytest.mark.anvil


def _deposit(node: Node, who: str, amount: int) -> None:
    signer = node.accounts.signer(who)
    node.contracts.token.ensure_allowance(signer, node.contracts.escrow.address, amount)
    node.contracts.escrow.deposit(signer, amount)


def _deposited(node: Node, who: str) -> int:
    return int(node.ledger.credit(node.accounts.address(who))["deposited"])


def _events(node: Node) -> int:
    with node.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(ChainEvent)))


def test_a_reorganised_deposit_is_undone_in_the_store(dnode: Node) -> None:
    node, rpc = dnode, dnode.client.rpc
    node.sync_chain()
    before, events = _deposited(node, "grace"), _events(node)
    snapshot = rpc("evm_snapshot")
    _deposit(node, "grace", 5 * OPEN)
    assert node.sync_chain() >= 1 and _deposited(node, "grace") == before + 5 * OPEN
    rpc("evm_revert", [snapshot])  # the deposit's blocks are replaced by others
    for _ in range(4):
        rpc("evm_mine")
    node.sync_chain()
    assert _deposited(node, "grace") == before and _events(node) == events
    assert node.sync.undone >= 1
    metrics = {
        s.name: s.value
        for f in text_string_to_metric_families(NodeMetrics(node).render().decode())
        for s in f.samples
    }
    assert metrics["openledger_chain_reorg_undone_events_total"] == node.sync.undone
    _deposit(node, "grace", 2 * OPEN)  # and the sync goes on from the fork
    node.sync_chain()
    assert _deposited(node, "grace") == before + 2 * OPEN


def test_a_new_process_finds_a_reorganisation_and_reads_the_new_blocks(dnode: Node) -> None:
    node, rpc = dnode, dnode.client.rpc
    node.sync_chain()
    grace, heidi = _deposited(node, "grace"), _deposited(node, "heidi")
    snapshot = rpc("evm_snapshot")
    _deposit(node, "grace", 5 * OPEN)
    node.sync_chain()
    cursor = node.sync.cursor()
    rpc("evm_revert", [snapshot])
    _deposit(node, "heidi", 3 * OPEN)  # the replacement blocks, as high as the old ones
    rpc("evm_mine")
    node.close()
    again = Node(node.settings)  # another process: no memory of the blocks it read
    try:
        again.sync_chain()
        assert _deposited(again, "grace") == grace  # undone
        assert _deposited(again, "heidi") == heidi + 3 * OPEN  # the new block's event applied
        assert again.sync.cursor() > cursor
    finally:
        again.close()


def test_depth_and_tags(dnode: Node) -> None:
    node = Node(replace(dnode.settings, sync_depth="3"))
    try:
        assert node.settings.confirmations == 3
        node.sync_chain()
        before = _deposited(node, "heidi")
        _deposit(node, "heidi", OPEN)  # approve + deposit: two blocks
        node.sync_chain()
        assert _deposited(node, "heidi") == before  # not 3 blocks deep yet
        node.client.rpc("anvil_mine", ["0x3"])
        node.sync_chain()
        assert _deposited(node, "heidi") == before + OPEN
    finally:
        node.close()
    assert Settings.load(env={"OPENLEDGER_HOME": "/tmp/x"}).confirmations == 0  # devnet
    remote = {"OPENLEDGER_HOME": "/tmp/x", "OPENLEDGER_CHAIN_URL": "http://127.0.0.1:1"}
    assert Settings.load(env=remote).confirmations == "finalized"
    assert Settings.load(env={**remote, "OPENLEDGER_SYNC_DEPTH": "safe"}).confirmations == "safe"
    with pytest.raises(ValidationError, match="sync depth") as exc:
        Settings.load(env={**remote, "OPENLEDGER_SYNC_DEPTH": "deep"}).confirmations  # noqa: B018
    assert exc.value.field == "sync_depth"
