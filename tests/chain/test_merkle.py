import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.chain.merkle import MerkleTree, leaf_hash, verify
from openledger.errors import NotFoundError, ValidationError

REPO = Path(__file__).resolve().parents[2]
OZ = REPO / "node_modules" / "@openzeppelin" / "merkle-tree"

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
entitlements = st.dictionaries(addresses, st.integers(0, 2**256 - 1), min_size=1, max_size=40)


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
    values = [[a, str(v)] for a, v in amounts.items()]
    run = subprocess.run(
        ["node", str(Path(__file__).with_name("oz_merkle.js"))],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
        env={"NODE_PATH": str(REPO / "node_modules"), "PATH": "/usr/bin:/usr/local/bin"},
    )
    js = json.loads(run.stdout)
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
