"""Node.health: whether the store and the chain answer (GET /health adds the version)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from openledger.config import Settings
from openledger.errors import ChainError
from openledger.node import Node
from tests.conftest import free_port


def test_a_node_without_its_chain_is_degraded_with_the_fix(home: Settings) -> None:
    node = Node(replace(home, chain_url=f"http://127.0.0.1:{free_port()}"))
    try:
        doc = node.health()
    finally:
        node.close()
    assert list(doc) == ["status", "store", "chain"]
    assert doc["status"] == "degraded"
    assert doc["store"]["ok"] is True and doc["store"]["revision"]
    assert doc["chain"]["ok"] is False and doc["chain"]["error"] and doc["chain"]["fix"]


def test_a_node_whose_store_and_chain_answer_is_ok(home: Settings) -> None:
    node = Node(home)
    node.__dict__["client"] = SimpleNamespace(check=lambda: 31337, block_number=lambda: 12)
    try:
        doc = node.health()
    finally:
        node.close()
    assert doc["status"] == "ok"
    assert doc["chain"] == {"ok": True, "chain_id": 31337, "block": 12, "url": home.rpc_url}


def test_a_chain_that_fails_its_check_is_reported_not_raised(home: Settings) -> None:
    def down() -> int:
        raise ChainError("no answer", fix="start it")

    node = Node(home)
    node.__dict__["client"] = SimpleNamespace(check=down, block_number=lambda: 1)
    try:
        doc = node.health()
    finally:
        node.close()
    assert doc["status"] == "degraded" and doc["store"]["ok"] is True
    assert doc["chain"] == {"ok": False, "error": "no answer", "fix": "start it"}
