"""Snapshots: deterministic roots, versioning, on-chain commitment, exports that `datasets`
loads."""

from __future__ import annotations

import json

import pytest

from openledger.chain.merkle import SimpleMerkleTree
from openledger.errors import AuthError, ConflictError, NotFoundError, ValidationError
from tests.conftest import World
from tests.datanets.test_contribute import PARAS, contribute

pytestmark = pytest.mark.anvil


def _approve(w: World, cid: int) -> None:
    for v in ("bob", "carol"):
        w.node.reviews.review(cid, signer=w.node.accounts.signer(v), approve=True)


def _populate(w: World) -> list[int]:
    a = contribute(w, w.write("a.txt", PARAS[0] + "\n\n" + PARAS[1]))
    chat = {
        "messages": [
            {"role": "user", "content": "Hearts of an octopus?"},
            {"role": "assistant", "content": PARAS[2]},
        ]
    }
    b = contribute(w, w.write("b.jsonl", json.dumps(chat) + "\n"), who="erin")
    _approve(w, a.contribution_id)
    _approve(w, b.contribution_id)
    return [a.contribution_id, b.contribution_id]


def test_snapshot_is_committed_and_deterministic(world: World) -> None:
    node = world.node
    ids = _populate(world)
    rows, root, contributions = node.snapshots.build("facts")
    assert node.snapshots.build("facts")[1] == root and contributions == ids
    assert root == SimpleMerkleTree.from_leaves([bytes.fromhex(r["sha256"]) for r in rows]).root
    snap = node.snapshots.snapshot("facts", signer=node.accounts.signer("dave"))
    assert snap["version"] == 1 and snap["root"] == "0x" + root.hex()
    dn_chain = node.datanets.show("facts")["id"]
    on_chain_root, count, uri, _ = node.contracts.datanets.snapshot(dn_chain, 1)
    assert on_chain_root == root and count == len(rows) and uri == f"blob:{snap['manifest_sha']}"
    manifest = json.loads(node.blobs.get(snap["manifest_sha"]))
    assert [r[1] for r in manifest["records"]] == [r["contribution"] for r in rows]
    with pytest.raises(ConflictError):
        node.snapshots.snapshot("facts", signer=node.accounts.signer("dave"))
    table = node.snapshots.table("facts", 1)
    assert table.num_rows == len(rows) and set(table.column("kind").to_pylist()) == {"text", "chat"}


def test_snapshot_rules(world: World) -> None:
    node = world.node
    with pytest.raises(ValidationError):
        node.snapshots.snapshot("facts", signer=node.accounts.signer("dave"))
    _populate(world)
    with pytest.raises(AuthError):
        node.snapshots.snapshot("facts", signer=node.accounts.signer("alice"))
    with pytest.raises(NotFoundError):
        node.snapshots.get("facts", 7)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_round_trip_through_datasets(world: World, tmp_path, fmt: str) -> None:
    import datasets

    node = world.node
    _populate(world)
    node.snapshots.snapshot("facts", signer=node.accounts.signer("dave"))
    path = node.snapshots.export("facts@1", fmt, tmp_path / f"facts.{fmt}")
    ds = datasets.load_dataset(
        "json" if fmt == "jsonl" else "parquet",
        data_files=str(path),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    rows = node.snapshots.table("facts", 1).to_pylist()
    assert len(ds) == len(rows)
    assert ds["sha256"] == [r["sha256"] for r in rows]
    chat = [r for r in ds if r["kind"] == "chat"][0]
    assert chat["messages"][1] == {"role": "assistant", "content": PARAS[2]}
    with pytest.raises(ValidationError):
        node.snapshots.export("facts@1", "csv", tmp_path / "x.csv")
    with pytest.raises(ValidationError):
        node.snapshots.export("facts@zero", "jsonl", tmp_path / "x.jsonl")
