"""Receipts: canonical JSON, hash-chained, each one signed by the operator (DESIGN §8).

A receipt's hash is ``keccak256`` of its canonical JSON (UTF-8, keys sorted, no spaces,
wei amounts as decimal strings); its body names the hash of the receipt before it
(``prev``), so the last hash of an epoch — posted on chain with the epoch's root — commits
to every receipt up to it. Each receipt is signed on its own (EIP-191 ``personal_sign`` of
its hash), so one receipt can be checked without the others:
``eth_account.Account.recover_message(encode_defunct(primitive=hash), signature=sig)``
must be the operator. Signing costs ~40 µs with libsecp256k1, so signing every receipt
costs less than the database write; no batching is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import coincurve
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak

GENESIS = "0x" + "00" * 32  # ``prev`` of the first receipt
RECEIPT_VERSION = 1
_EIP191_32 = b"\x19Ethereum Signed Message:\n32"


def canonical_json(value: Any) -> bytes:
    """The one byte string of a JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def hex32(value: bytes) -> str:
    """Bytes (a root, a hash read from chain) as 0x-prefixed hex."""
    return "0x" + bytes(value).hex()


def hash_hex(data: bytes) -> str:
    return "0x" + keccak(data).hex()


def receipt_hash(body: Mapping[str, Any]) -> str:
    return hash_hex(canonical_json(body))


class ReceiptSigner:
    """Signs receipt hashes with the operator key (EIP-191 over the 32-byte hash)."""

    def __init__(self, private_key: bytes) -> None:
        self._key = coincurve.PrivateKey(bytes(private_key))
        self.address = Account.from_key(bytes(private_key)).address

    def sign(self, digest_hex: str) -> str:
        digest = bytes.fromhex(digest_hex.removeprefix("0x"))
        sig = self._key.sign_recoverable(keccak(_EIP191_32 + digest), hasher=None)
        return "0x" + (sig[:64] + bytes([sig[64] + 27])).hex()


def recover_signer(digest_hex: str, signature: str) -> str:
    """The address that signed ``digest_hex`` (EIP-191), or "" if the signature is malformed."""
    try:
        message = encode_defunct(primitive=bytes.fromhex(digest_hex.removeprefix("0x")))
        return Account.recover_message(message, signature=signature)
    except Exception:  # malformed signatures are reported, not raised
        return ""


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt as stored and served: body, its hash and the operator's signature."""

    seq: int
    body: dict[str, Any]
    hash: str
    signature: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.seq,
            "hash": self.hash,
            "signature": self.signature,
            "receipt": self.body,
        }


@dataclass(frozen=True)
class ReceiptCheck:
    seq: int
    ok: bool
    problem: str = ""


def check_receipt(
    seq: int, body_text: str, stored_hash: str, signature: str, prev_hash: str, operator: str
) -> ReceiptCheck:
    """Whether a stored receipt is intact: canonical body, hash, place in the chain, signer."""
    try:
        body = json.loads(body_text)
    except ValueError:
        return ReceiptCheck(seq, False, "its body is not JSON")
    if canonical_json(body).decode() != body_text:
        return ReceiptCheck(seq, False, "its body is not in canonical form (it was edited)")
    digest = receipt_hash(body)
    if digest != stored_hash:
        return ReceiptCheck(
            seq, False, f"its body hashes to {digest}, not the stored {stored_hash}"
        )
    if body.get("seq") != seq:
        return ReceiptCheck(seq, False, f"its body says seq {body.get('seq')!r} (reordered)")
    if body.get("prev") != prev_hash:
        return ReceiptCheck(
            seq,
            False,
            f"its prev is {body.get('prev')}, but the receipt before it hashes to "
            f"{prev_hash} (the chain is broken or reordered)",
        )
    signer = recover_signer(digest, signature)
    if signer.lower() != operator.lower():
        return ReceiptCheck(
            seq,
            False,
            f"its signature recovers to {signer or 'nothing'}, not the operator {operator}",
        )
    return ReceiptCheck(seq, True)
