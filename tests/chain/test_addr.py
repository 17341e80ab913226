"""The web3-free address helpers agree with eth_utils on every input class."""

from __future__ import annotations

import random

import pytest
from eth_utils import is_address as eth_is_address
from eth_utils import to_checksum_address as eth_checksum

from openledger.chain.addr import is_address, keccak256, to_checksum_address


def test_checksum_and_is_address_match_eth_utils() -> None:
    rng = random.Random(19)
    for _ in range(500):
        raw = bytes(rng.getrandbits(8) for _ in range(20)).hex()
        good = eth_checksum("0x" + raw)
        assert to_checksum_address(raw) == to_checksum_address("0x" + raw.upper()) == good
        flipped = good[:2] + good[2:].swapcase()
        for candidate in (good, "0x" + raw, raw, "0X" + raw, flipped, raw + "0", raw[:-1]):
            assert is_address(candidate) == eth_is_address(candidate), candidate
        assert to_checksum_address(bytes.fromhex(raw)) == good
    for other in ("0x" + "g" * 40, None, b"x" * 20, b"x" * 19, 42, ""):
        assert is_address(other) == eth_is_address(other), other


def test_keccak_is_ethereums_not_sha3() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )


@pytest.mark.parametrize("bad", ["0x123", "zz" * 20, ""])
def test_checksum_refuses_non_addresses(bad: str) -> None:
    with pytest.raises(ValueError):
        to_checksum_address(bad)
