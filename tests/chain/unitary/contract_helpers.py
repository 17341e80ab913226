"""Shared helpers for the contract unit tests: actors, constants, a test-local Merkle tree
and the deployment of the full contract set in the documented order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

OPEN = 10**18
SUPPLY = 10**9 * OPEN
START_TIME = 1_750_000_000
DAY = 86_400
HOUR = 3_600
ZERO = "0x" + "00" * 20
ZERO32 = b"\x00" * 32


def addr(name: str) -> str:
    """A deterministic named address (boa aliases it for readable traces)."""
    return boa.env.generate_address(name)


def signer(name: str) -> LocalAccount:
    """A deterministic account with a private key (for EIP-712 signatures)."""
    return Account.from_key(keccak(text=f"openledger-test:{name}"))


def h(label: str) -> bytes:
    """A deterministic non-zero 32-byte value."""
    return keccak(text=label)


# ---- Merkle helpers (OpenZeppelin StandardMerkleTree semantics, test-local) -------------


def leaf(account: str, cumulative: int) -> bytes:
    """``keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))))``."""
    return keccak(keccak(encode(["address", "uint256"], [account, cumulative])))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


class MerkleTree:
    """A minimal sorted-pair Merkle tree over ``(account, cumulative)`` leaves."""

    def __init__(self, entries: dict[str, int]) -> None:
        self.entries = dict(entries)
        self.keys = list(self.entries)
        level = [leaf(a, c) for a, c in self.entries.items()]
        assert level, "a tree needs at least one leaf"
        self.levels = [level]
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level), 2):
                nxt.append(hash_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i])
            level = nxt
            self.levels.append(level)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    @property
    def total(self) -> int:
        return sum(self.entries.values())

    def proof(self, account: str) -> list[bytes]:
        i = self.keys.index(account)
        out = []
        for level in self.levels[:-1]:
            j = i ^ 1
            if j < len(level):
                out.append(level[j])
            i //= 2
        return out


# ---- Deployment --------------------------------------------------------------------------


@dataclass
class System:
    """The deployed contracts and the named actors."""

    token: Any
    params: Any
    datanets: Any
    models: Any
    distributor: Any
    escrow: Any
    deployer: str
    treasury: str
    operator: str
    alice: str
    bob: str
    carol: str
    validators: list[str]

    def fund(self, account: str, amount: int) -> None:
        with boa.env.prank(self.deployer):
            self.token.transfer(account, amount)

    def approve(self, owner: str, spender: str, amount: int = 2**256 - 1) -> None:
        with boa.env.prank(owner):
            self.token.approve(spender, amount)


def deploy_system(factories: dict[str, Any]) -> System:
    """Deploy the full set in the documented order and fund the actors."""
    boa.env.timestamp = START_TIME
    deployer = addr("deployer")
    treasury = addr("treasury")
    operator = addr("operator")
    with boa.env.prank(deployer):
        token = factories["OpenToken"].deploy(deployer)
        params = factories["ProtocolParams"].deploy(treasury)
        distributor = factories["RewardDistributor"].deploy(token.address, params.address, operator)
        datanets = factories["DatanetRegistry"].deploy(
            token.address, params.address, distributor.address
        )
        models = factories["ModelRegistry"].deploy()
        escrow = factories["InferenceEscrow"].deploy(
            token.address, params.address, operator, distributor.address
        )
    system = System(
        token=token,
        params=params,
        datanets=datanets,
        models=models,
        distributor=distributor,
        escrow=escrow,
        deployer=deployer,
        treasury=treasury,
        operator=operator,
        alice=addr("alice"),
        bob=addr("bob"),
        carol=addr("carol"),
        validators=[addr(f"validator{i}") for i in range(3)],
    )
    for who in (system.alice, system.bob, system.carol):
        system.fund(who, 1_000_000 * OPEN)
    return system


def events(contract: Any, name: str) -> list[Any]:
    """The decoded ``name`` events the contract emitted in its last call."""
    return [e for e in contract.get_logs() if type(e).__name__ == name]


# A token that can be told to return False instead of reverting, to reach the contracts'
# "transfer failed" checks (OPEN itself always reverts on failure).
FALSE_TOKEN_SOURCE = """
# pragma version ~=0.4.3
balanceOf: public(HashMap[address, uint256])
fail: public(bool)

@external
def set_fail(flag: bool):
    self.fail = flag

@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount

@external
def transfer(to: address, amount: uint256) -> bool:
    if self.fail:
        return False
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    return True

@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.fail:
        return False
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    return True
"""
