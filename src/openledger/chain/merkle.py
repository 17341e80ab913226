"""Merkle trees compatible with OpenZeppelin's ``@openzeppelin/merkle-tree``.

Two trees share one layout: leaves sorted, laid out in a flat array (root at index 0,
leaves at the end in reverse order) and pairs hashed sorted with keccak256 — exactly the JS
library's layout, so roots and proofs agree byte for byte.

- :class:`MerkleTree` is its ``StandardMerkleTree`` for ``(address, uint256)``: leaves are
  double-hashed ``keccak256(bytes.concat(keccak256(abi.encode(account, amount))))``.
- :class:`SimpleMerkleTree` is its ``SimpleMerkleTree``: the leaves are bytes32 values
  used as they are (not re-hashed), e.g. the sha256 of each record of a contribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from openledger.errors import NotFoundError, ValidationError


def leaf_hash(account: str, amount: int) -> bytes:
    return keccak(keccak(encode(["address", "uint256"], [to_checksum_address(account), amount])))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def verify(root: bytes, leaf: bytes, proof: list[bytes]) -> bool:
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root


@dataclass(frozen=True)
class MerkleTree:
    """A tree over ``account -> cumulative amount``; build with :meth:`from_amounts`."""

    nodes: tuple[bytes, ...]
    index_of: Mapping[str, int]  # checksum address -> position in ``nodes``
    amounts: Mapping[str, int]

    @classmethod
    def from_amounts(cls, amounts: Mapping[str, int]) -> MerkleTree:
        if not amounts:
            raise ValidationError(
                "A Merkle tree needs at least one entry.",
                field="amounts",
                fix="settle an epoch only once some account has earned.",
            )
        normalised: dict[str, int] = {}
        for account, amount in amounts.items():
            if not isinstance(amount, int) or amount < 0 or amount >= 2**256:
                raise ValidationError(
                    f"Amount {amount!r} for {account} is not a uint256.",
                    field="amount",
                    value=amount,
                    fix="use a non-negative integer number of wei.",
                )
            normalised[to_checksum_address(account)] = amount
        hashed = sorted((leaf_hash(a, v), a) for a, v in normalised.items())
        nodes = _build_nodes([h for h, _ in hashed])
        index_of = {account: len(nodes) - 1 - i for i, (_, account) in enumerate(hashed)}
        return cls(nodes=nodes, index_of=index_of, amounts=normalised)

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, account: str) -> list[bytes]:
        account = to_checksum_address(account)
        if account not in self.index_of:
            raise NotFoundError(
                f"{account} has no entry in this epoch's tree.",
                field="account",
                value=account,
                fix="check the address; only accounts that earned appear in the tree.",
            )
        return _proof(self.nodes, self.index_of[account])


@dataclass(frozen=True)
class SimpleMerkleTree:
    """A tree over bytes32 leaves taken as they are; build with :meth:`from_leaves`.

    Same root and proofs as ``SimpleMerkleTree.of(leaves)`` in ``@openzeppelin/merkle-tree``
    (sorted leaves); a proof checks with :func:`verify` (or OpenZeppelin's
    ``MerkleProof.verify``) against the leaf itself.
    """

    nodes: tuple[bytes, ...]
    index_of: Mapping[bytes, int]  # leaf -> position in ``nodes``

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> SimpleMerkleTree:
        if not leaves:
            raise ValidationError(
                "A Merkle tree needs at least one leaf.",
                field="leaves",
                fix="build the tree over at least one record.",
            )
        for i, leaf in enumerate(leaves):
            if not isinstance(leaf, bytes) or len(leaf) != 32:
                raise ValidationError(
                    f"Leaf {i} is not 32 bytes ({leaf!r:.80}).",
                    field="leaves",
                    value=i,
                    fix="pass bytes32 values, e.g. the raw sha256 digest of each record.",
                )
        ordered = sorted(leaves)
        nodes = _build_nodes(ordered)
        # with equal leaves the last one wins, as in the JS library; either proof verifies
        index_of = {leaf: len(nodes) - 1 - i for i, leaf in enumerate(ordered)}
        return cls(nodes=nodes, index_of=index_of)

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def __len__(self) -> int:
        return (len(self.nodes) + 1) // 2

    def proof(self, leaf: bytes) -> list[bytes]:
        if leaf not in self.index_of:
            raise NotFoundError(
                f"Leaf 0x{bytes(leaf).hex()} is not in this tree.",
                field="leaf",
                value="0x" + bytes(leaf).hex(),
                fix="check the record's hash; only the tree's own leaves have proofs.",
            )
        return _proof(self.nodes, self.index_of[leaf])


def _build_nodes(sorted_leaves: Sequence[bytes]) -> tuple[bytes, ...]:
    """The JS library's flat layout: root at 0, leaf ``i`` at ``len - 1 - i``."""
    n = len(sorted_leaves)
    nodes: list[bytes] = [b""] * (2 * n - 1)
    for i, leaf in enumerate(sorted_leaves):
        nodes[len(nodes) - 1 - i] = leaf
    for i in range(len(nodes) - 1 - n, -1, -1):
        nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
    return tuple(nodes)


def _proof(nodes: Sequence[bytes], i: int) -> list[bytes]:
    path = []
    while i > 0:
        sibling = i - 1 if i % 2 == 0 else i + 1
        path.append(nodes[sibling])
        i = (i - 1) // 2
    return path
