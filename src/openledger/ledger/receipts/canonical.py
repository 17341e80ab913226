"""Receipts: canonical JSON, hash-chained, signed by the operator per batch (DESIGN §8).

- a receipt's **content hash** is ``keccak256`` of its canonical JSON (UTF-8, keys sorted,
  no spaces, wei amounts as decimal strings): who paid what for which model, the split,
  the payouts, the pools and the attribution. It is computed in the pricing process
  (``pricing_process``), or in the ledger's receiver thread when there is none.
- its **hash** places it in the chain: ``keccak256(prev ‖ uint256(seq) ‖ content hash)``
  (``abi.encodePacked``), where ``prev`` is the hash of the receipt before it. The last hash
  of an epoch is posted on chain with the epoch's root.
- the writer commits receipts in groups (up to 256) and the operator signs the hash of each
  group's last receipt (EIP-191 ``personal_sign`` of the 32 bytes): ``head_signature``.
  That one signature commits to the content and the place of every receipt of the group.

This is the "each batch through the signed head of the hash chain" choice: one ~40 µs
signature per group instead of one per receipt, which was a fifth of the per-receipt cost.
A single receipt still proves itself without the others' bodies: ``GET /receipts/{id}``
serves the content hashes of the receipts after it up to its group's head, and
``check_served`` walks them to the signed head.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import coincurve
import orjson
import sha3  # safe-pysha3: Keccak-256 in C that keeps the GIL for short inputs

GENESIS = "0x" + "00" * 32  # ``prev`` of the first receipt
RECEIPT_VERSION = 1
_EIP191_32 = b"\x19Ethereum Signed Message:\n32"


def canonical_json(value: Any) -> bytes:
    """The one byte string of a JSON value: sorted keys, no whitespace, UTF-8; NaN and
    infinities are refused (ValueError).

    The bytes are those of ``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``. orjson writes the same bytes about ten times faster but writes
    NaN as ``null``, so any output holding ``null`` (or a value orjson refuses: integers
    over 64 bits, non-string keys) is written again by the standard library, which refuses
    NaN. Receipt bodies hold no ``null`` and no floats, so they take the fast path."""
    try:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        out = b"null"
    if b"null" not in out:
        return out
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def hex32(value: bytes) -> str:
    """Bytes (a root, a hash read from chain) as 0x-prefixed hex."""
    return "0x" + bytes(value).hex()


_GIL_CHUNK = 2047  # pysha3, like hashlib, lets go of the GIL for inputs of 2048 bytes or more


def _keccak(data: bytes) -> Any:
    """Keccak-256 in chunks short enough that the GIL is kept: hashing a 3 KB receipt takes
    ~8 µs, and handing the GIL over for that made the thread wait up to the interpreter's
    5 ms switch interval to get it back, while the writer thread had it."""
    h = sha3.keccak_256()
    for i in range(0, len(data), _GIL_CHUNK):
        h.update(data[i : i + _GIL_CHUNK])
    return h


def keccak(data: bytes) -> bytes:
    return _keccak(data).digest()


def hash_hex(data: bytes) -> str:
    return "0x" + _keccak(data).hexdigest()


def content_hash(body: Mapping[str, Any]) -> str:
    """keccak256 of the receipt body's canonical JSON."""
    return hash_hex(canonical_json(body))


def link_hash(prev: str, seq: int, content: str) -> str:
    """The receipt's place in the chain: keccak256(prev ‖ uint256(seq) ‖ content hash)."""
    return hash_hex(bytes.fromhex(prev[2:]) + seq.to_bytes(32, "big") + bytes.fromhex(content[2:]))


class ReceiptSigner:
    """Signs receipt hashes with the operator key (EIP-191 over the 32-byte hash)."""

    def __init__(self, private_key: bytes) -> None:
        from eth_account import Account  # imported here: the pricing process needs none of it

        self._key = coincurve.PrivateKey(bytes(private_key))
        self.address = Account.from_key(bytes(private_key)).address

    def sign(self, digest_hex: str) -> str:
        digest = bytes.fromhex(digest_hex.removeprefix("0x"))
        sig = self._key.sign_recoverable(keccak(_EIP191_32 + digest), hasher=None)
        return "0x" + (sig[:64] + bytes([sig[64] + 27])).hex()


def recover_signer(digest_hex: str, signature: str) -> str:
    """The address that signed ``digest_hex`` (EIP-191), or "" if the signature is malformed."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        message = encode_defunct(primitive=bytes.fromhex(digest_hex.removeprefix("0x")))
        return Account.recover_message(message, signature=signature)
    except Exception:  # malformed signatures are reported, not raised
        return ""


class SignedReceipt:
    """A receipt as committed: its content (canonical JSON), content hash and place in the
    chain, and the head signature of its group (see the module docstring).

    A plain class with slots: the writer makes one per receipt, and a frozen dataclass's
    ``__init__`` was a tenth of the writer's own Python time."""

    __slots__ = ("_body", "content_hash", "hash", "head", "prev", "seq", "text")

    def __init__(
        self,
        seq: int,
        text: str,
        hash: str,
        prev: str,
        content_hash: str,
        head: tuple[int, str, str],  # its group's last receipt: (seq, hash, head signature)
    ) -> None:
        self.seq, self.text, self.hash, self.prev = seq, text, hash, prev
        self.content_hash, self.head = content_hash, head
        self._body: dict[str, Any] | None = None

    @property
    def body(self) -> dict[str, Any]:
        """Its content, parsed on first use (most callers need only its id and hash)."""
        if self._body is None:
            self._body = orjson.loads(self.text)
        return self._body

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignedReceipt) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self.seq, self.text, self.hash, self.prev, self.content_hash, self.head)

    def __repr__(self) -> str:
        return f"SignedReceipt(seq={self.seq}, hash={self.hash})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.seq,
            "hash": self.hash,
            "prev": self.prev,
            "content_hash": self.content_hash,
            "receipt": self.body,
        }


@dataclass(frozen=True)
class ReceiptCheck:
    seq: int
    ok: bool
    problem: str = ""


def check_receipt(
    seq: int, body_text: str, stored_content_hash: str, stored_hash: str, prev_hash: str
) -> ReceiptCheck:
    """Whether a stored receipt is intact: canonical body, content hash, and its link to the
    receipt before it (whose hash is ``prev_hash``). Who vouches for it is its group's
    signed head (``check_head``)."""
    try:
        body = json.loads(body_text)
    except ValueError:
        return ReceiptCheck(seq, False, "its body is not JSON")
    if canonical_json(body).decode() != body_text:
        return ReceiptCheck(seq, False, "its body is not in canonical form (it was edited)")
    digest = content_hash(body)
    if digest != stored_content_hash:
        return ReceiptCheck(
            seq, False, f"its body hashes to {digest}, not the stored {stored_content_hash}"
        )
    link = link_hash(prev_hash, seq, digest)
    if link != stored_hash:
        return ReceiptCheck(
            seq,
            False,
            f"its place in the chain hashes to {link} (after {prev_hash}), not the stored "
            f"{stored_hash} (the chain is broken or reordered)",
        )
    return ReceiptCheck(seq, True)


def check_head(seq: int, stored_hash: str, head_signature: str, operator: str) -> str:
    """ "" if ``head_signature`` is the operator's signature of the hash of receipt ``seq``
    (the last of a group), else what is wrong."""
    signer = recover_signer(stored_hash, head_signature)
    if signer.lower() != operator.lower():
        return (
            f"its head signature recovers to {signer or 'nothing'}, not the operator "
            f"{operator} (the chain up to it was rewritten)"
        )
    return ""


def check_served(doc: Mapping[str, Any], operator: str) -> str:
    """ "" if a receipt as served (``GET /receipts/{id}``) proves itself: its content hash,
    its link hash, and the hashes from it to its group's head, which the operator signed;
    else what is wrong. Needs nothing but the document and the operator's address."""
    body_text = canonical_json(doc["receipt"]).decode()
    check = check_receipt(doc["seq"], body_text, doc["content_hash"], doc["hash"], doc["prev"])
    if not check.ok:
        return check.problem
    head = doc.get("head")
    if not head:
        return "it names no signed head (its group was not committed)"
    link, seq = doc["hash"], doc["seq"]
    for content in head["content_hashes"]:
        seq += 1
        link = link_hash(link, seq, content)
    if (seq, link) != (head["seq"], head["hash"]):
        return f"the hashes after it lead to {link} at {seq}, not the head {head['hash']}"
    return check_head(head["seq"], head["hash"], head["signature"], operator)
