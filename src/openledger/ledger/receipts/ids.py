"""Public receipt ids: unguessable, so that receipts are not a directory of everyone's usage.

A receipt's public id is ``rc_`` + base64url(AES-128(key, seq ‖ 0⁶⁴)): its sequence number
encrypted with a key the node made for itself (``node_secrets``, the same for every process
on the database). Nothing is stored per receipt and the ledger's write path is unchanged;
an id decrypts back to its sequence number, and a guessed id is refused unless its lower 64
bits decrypt to zero (a chance of 2⁻⁶⁴ per guess). Anyone holding a public id may read that
receipt (``GET /receipts/{id}``); reading by sequence number or by hash is for the payer and
the operator only (docs/ledger.md, "Who can read a receipt").
"""

from __future__ import annotations

import base64
import binascii
import threading
import weakref

from Crypto.Cipher import AES

from openledger.store.db import Database
from openledger.store.secrets import node_secret

PREFIX = "rc_"
ID_LEN = len(PREFIX) + 22  # 16 bytes in unpadded base64url
MAX_SEQ = 2**63 - 1
SECRET_NAME = "receipt_id_key"


class ReceiptIds:
    """Encode a sequence number as a public id and back."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("the receipt-id key is 16 bytes")
        self._cipher = AES.new(key, AES.MODE_ECB)
        self._lock = threading.Lock()  # a cipher object is not shared between threads

    def public(self, seq: int) -> str:
        if not 0 < seq <= MAX_SEQ:
            raise ValueError(f"receipt sequence number {seq} is out of range")
        with self._lock:
            block = self._cipher.encrypt(seq.to_bytes(8, "big") + bytes(8))
        return PREFIX + base64.urlsafe_b64encode(block).rstrip(b"=").decode()

    def seq_of(self, public: str) -> int | None:
        """The sequence number of a public id, or None when it is not one of this node's."""
        if len(public) != ID_LEN or not public.startswith(PREFIX):
            return None
        try:
            block = base64.urlsafe_b64decode(public[len(PREFIX) :] + "==")
        except (binascii.Error, ValueError):
            return None
        if len(block) != 16:
            return None
        with self._lock:
            plain = self._cipher.decrypt(block)
        seq = int.from_bytes(plain[:8], "big")
        if plain[8:] != bytes(8) or not 0 < seq <= MAX_SEQ:
            return None
        return seq


def is_public_id(ref: str) -> bool:
    return ref.startswith(PREFIX)


_BY_DB: weakref.WeakKeyDictionary[Database, ReceiptIds] = weakref.WeakKeyDictionary()
_BY_DB_LOCK = threading.Lock()


def receipt_ids(db: Database) -> ReceiptIds:
    """The codec of ``db``'s node (its key made on first use), cached per database."""
    with _BY_DB_LOCK:
        found = _BY_DB.get(db)
    if found is None:
        found = ReceiptIds(node_secret(db, SECRET_NAME, 16))
        with _BY_DB_LOCK:
            found = _BY_DB.setdefault(db, found)
    return found
