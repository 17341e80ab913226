import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.chain.merkle import MerkleTree, SimpleMerkleTree, leaf_hash, verify
from openledger.errors import NotFoundError, ValidationError

REPO = Path(__file__).resolve().parents[2]
OZ = REPO / "node_modules" / "@openzeppelin" / "merkle-tree"

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
entitlements = st.dictionaries(addresses, st.integers(0, 2**256 - 1), min_size=1, max_size=40)
bytes32_leaves = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True)


def run_node(script: str, payload: object) -> dict:
    run = subprocess.run(
        ["node", str(Path(__file__).with_name(script))],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        env={"NODE_PATH": str(REPO / "node_modules"), "PATH": "/usr/bin:/usr/local/bin"},
    )
    return json.loads(run.stdout)


@given(entitlements)
def test_every_proof_verifies(amounts: dict[str, int]) -> None:
    tree = MerkleTree.from_amounts(amounts)
    for account, amount in amounts.items():
        assert verify(tree.root, leaf_hash(account, amount), tree.proof(account))
        assert not verify(
            tree.root, leaf_hash(account, amount + 1 if amount < 2**255 else 0), tree.proof(account)
        )


def test_known_root_from_openzeppelin_js() -> None:
    # computed with @openzeppelin/merkle-tree 1.0.8 StandardMerkleTree.of(.., ["address","uint256"])
    tree = MerkleTree.from_amounts(
        {"0x" + "11" * 20: 5 * 10**18, "0x" + "22" * 20: 25 * 10**17, "0x" + "33" * 20: 7}
    )
    assert tree.root.hex() == "e264190c3e22d981e46853866509a7576d5037da794a48ed577d392cc9a9b415"
    assert [p.hex() for p in tree.proof("0x" + "33" * 20)] == [
        "b92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc",
        "eb02c421cfa48976e66dfb29120745909ea3a0f843456c263cf8f1253483e283",
    ]


@pytest.mark.skipif(not OZ.exists() or not shutil.which("node"), reason="npm ci not run")
@settings(max_examples=15, deadline=None)
@given(entitlements)
def test_same_root_and_proofs_as_openzeppelin_js(amounts: dict[str, int]) -> None:
    tree = MerkleTree.from_amounts(amounts)
    js = run_node("oz_merkle.js", [[a, str(v)] for a, v in amounts.items()])
    assert js["root"] == "0x" + tree.root.hex()
    for account, proof in js["proofs"].items():
        assert proof == ["0x" + p.hex() for p in tree.proof(account)]


def test_bad_input() -> None:
    with pytest.raises(ValidationError):
        MerkleTree.from_amounts({})
    with pytest.raises(ValidationError):
        MerkleTree.from_amounts({"0x" + "11" * 20: -1})
    with pytest.raises(NotFoundError):
        MerkleTree.from_amounts({"0x" + "11" * 20: 1}).proof("0x" + "22" * 20)


@given(bytes32_leaves)
def test_simple_tree_every_proof_verifies(leaves: list[bytes]) -> None:
    tree = SimpleMerkleTree.from_leaves(leaves)
    assert len(tree) == len(leaves)
    assert SimpleMerkleTree.from_leaves(list(reversed(leaves))).root == tree.root  # order-free
    for leaf in leaves:
        assert verify(tree.root, leaf, tree.proof(leaf))
        flipped = leaf[:31] + bytes([leaf[31] ^ 1])
        assert not verify(tree.root, flipped, tree.proof(leaf))


def test_simple_tree_known_root_from_openzeppelin_js() -> None:
    # computed with @openzeppelin/merkle-tree 1.0.8 SimpleMerkleTree.of([0x11.., 0x22.., 0x33..])
    leaves = [bytes([b]) * 32 for b in (0x11, 0x22, 0x33)]
    tree = SimpleMerkleTree.from_leaves(leaves)
    assert tree.root.hex() == "87fbd8dad686d9536b2ef65757c3415df1b7a4664deb34eda3d91234936eb5fe"
    assert tree.proof(leaves[0]) == [leaves[1], leaves[2]]
    assert [p.hex() for p in tree.proof(leaves[2])] == [
        "3e92e0db88d6afea9edc4eedf62fffa4d92bcdfc310dccbe943747fe8302e871"
    ]
    # a single leaf is its own root (not re-hashed), with an empty proof
    assert SimpleMerkleTree.from_leaves([leaves[0]]).root == leaves[0]
    assert SimpleMerkleTree.from_leaves([leaves[0]]).proof(leaves[0]) == []


@pytest.mark.skipif(not OZ.exists() or not shutil.which("node"), reason="npm ci not run")
@settings(max_examples=15, deadline=None)
@given(bytes32_leaves)
def test_simple_tree_same_root_and_proofs_as_openzeppelin_js(leaves: list[bytes]) -> None:
    tree = SimpleMerkleTree.from_leaves(leaves)
    js = run_node("oz_simple_merkle.js", ["0x" + leaf.hex() for leaf in leaves])
    assert js["root"] == "0x" + tree.root.hex()
    assert len(js["proofs"]) == len(leaves)
    for leaf, proof in js["proofs"].items():
        assert proof == ["0x" + p.hex() for p in tree.proof(bytes.fromhex(leaf[2:]))]


def test_simple_tree_bad_input() -> None:
    with pytest.raises(ValidationError):
        SimpleMerkleTree.from_leaves([])
    with pytest.raises(ValidationError, match="Leaf 1 is not 32 bytes"):
        SimpleMerkleTree.from_leaves([bytes(32), b"short"])
    with pytest.raises(NotFoundError):
        SimpleMerkleTree.from_leaves([bytes(32)]).proof(b"\x01" * 32)
