"""Ethereum addresses without web3: the EIP-55 checksum with pycryptodome's keccak.

``eth_utils`` costs ~0.2 s to import (web3 ~0.9 s); the CLI's reads only need to check and
checksum an address, so they use these two functions (equal to ``eth_utils``' for every
input, tested in tests/chain/test_addr.py).
"""

from __future__ import annotations

import re

from Crypto.Hash import keccak

_HEX40 = re.compile(r"^(0[xX])?[0-9a-fA-F]{40}$")


def keccak256(data: bytes) -> bytes:
    """Keccak-256 of ``data`` (Ethereum's hash, not NIST SHA3-256)."""
    return keccak.new(digest_bits=256, data=data).digest()


def to_checksum_address(value: str | bytes) -> str:
    """The EIP-55 mixed-case form of a 20-byte address (hex with or without ``0x``, or the
    20 raw bytes)."""
    if isinstance(value, bytes | bytearray) and len(value) == 20:
        value = bytes(value).hex()
    if not isinstance(value, str) or not _HEX40.match(value):
        raise ValueError(f"{value!r} is not a 20-byte hex address")
    lower = value[-40:].lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower)
    )


def is_address(value: object) -> bool:
    """``eth_utils.is_address``: 40 hex digits with or without ``0x`` in any case (the
    checksum is not enforced), or 20 raw bytes."""
    if isinstance(value, bytes | bytearray):
        return len(value) == 20
    return isinstance(value, str) and _HEX40.match(value) is not None


def create_address(sender: str, nonce: int) -> str:
    """The address of the contract ``sender`` creates with ``nonce`` (CREATE:
    ``keccak(rlp([sender, nonce]))[12:]``)."""

    def item(raw: bytes) -> bytes:
        return raw if len(raw) == 1 and raw[0] < 0x80 else bytes([0x80 + len(raw)]) + raw

    nonce_bytes = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big") if nonce else b""
    body = item(bytes.fromhex(sender.removeprefix("0x"))) + item(nonce_bytes)
    return to_checksum_address(keccak256(bytes([0xC0 + len(body)]) + body)[12:].hex())
