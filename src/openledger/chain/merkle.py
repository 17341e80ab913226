"""Merkle trees compatible with OpenZeppelin's ``StandardMerkleTree`` for ``(address, uint256)``.

Leaves are double-hashed ``keccak256(bytes.concat(keccak256(abi.encode(account, amount))))``,
sorted by hash, laid out in a flat array (root at index 0, leaves at the end in reverse
order) and pairs are hashed sorted — exactly the JS library's layout, so roots and proofs
agree byte for byte with ``@openzeppelin/merkle-tree``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        n = len(hashed)
        nodes: list[bytes] = [b""] * (2 * n - 1)
        index_of: dict[str, int] = {}
        for i, (h, account) in enumerate(hashed):
            pos = len(nodes) - 1 - i
            nodes[pos] = h
            index_of[account] = pos
        for i in range(len(nodes) - 1 - n, -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(nodes=tuple(nodes), index_of=index_of, amounts=normalised)

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
        i = self.index_of[account]
        path = []
        while i > 0:
            sibling = i - 1 if i % 2 == 0 else i + 1
            path.append(self.nodes[sibling])
            i = (i - 1) // 2
        return path
