"""Receipts: canonical JSON, keccak hash, EIP-191 signature, and the checks an audit runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from openledger.ledger.receipts import (
    GENESIS,
    ReceiptSigner,
    canonical_json,
    check_receipt,
    receipt_hash,
    recover_signer,
)

OPERATOR_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
OTHER_KEY = bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f")
OPERATOR = Account.from_key(OPERATOR_KEY).address

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),  # fmt: skip
    max_leaves=20,
)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    body = {"z": 1, "a": {"y": "é", "b": [1, 2, {"k": None}]}, "fee": "123"}
    text = b'{"a":{"b":[1,2,{"k":null}],"y":"\xc3\xa9"},"fee":"123","z":1}'
    assert canonical_json(body) == text
    # a pinned hash: the format must not drift, or every stored receipt stops verifying
    assert receipt_hash(body) == (
        "0x362d0bede25e5039c2b4d7262de236f7e93f4974f69cf0638edb611bda1c9f98"
    )
    assert receipt_hash(body) == "0x" + Web3.keccak(text).hex().removeprefix("0x")


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8), st.randoms())
def test_canonical_json_is_stable_under_key_order_and_a_round_trip(
    body: dict[str, Any], rnd: Any
) -> None:
    items = list(body.items())
    rnd.shuffle(items)
    shuffled = dict(items)
    assert canonical_json(shuffled) == canonical_json(body)
    assert canonical_json(json.loads(canonical_json(body))) == canonical_json(body)
    assert receipt_hash(shuffled) == receipt_hash(body)


def test_a_signature_recovers_to_the_signer_and_matches_eth_account() -> None:
    signer = ReceiptSigner(OPERATOR_KEY)
    assert signer.address == OPERATOR
    digest = receipt_hash({"seq": 1, "fee": "10"})
    sig = signer.sign(digest)
    assert recover_signer(digest, sig) == OPERATOR
    # the same deterministic (RFC 6979) signature eth_account makes with personal_sign
    expected = Account.sign_message(
        encode_defunct(primitive=bytes.fromhex(digest[2:])), OPERATOR_KEY
    ).signature
    assert sig == "0x" + bytes(expected).hex()
    assert sig[-2:] in ("1b", "1c")  # v = 27 / 28
    other = receipt_hash({"seq": 1, "fee": "11"})
    assert recover_signer(other, sig) != OPERATOR
    assert recover_signer(digest, "0x1234") == ""


def chain(n: int, key: bytes = OPERATOR_KEY) -> list[tuple[int, str, str, str, str]]:
    """(seq, body text, hash, signature, prev) of ``n`` chained receipts."""
    signer, prev, out = ReceiptSigner(key), GENESIS, []
    for seq in range(1, n + 1):
        body = {"v": 1, "seq": seq, "prev": prev, "fee": str(100 * seq), "payer": "0xgrace"}
        digest = receipt_hash(body)
        out.append((seq, canonical_json(body).decode(), digest, signer.sign(digest), prev))
        prev = digest
    return out


def test_an_intact_chain_checks_out() -> None:
    for seq, text, digest, sig, prev in chain(4):
        assert check_receipt(seq, text, digest, sig, prev, OPERATOR).ok
        assert check_receipt(seq, text, digest, sig, prev, OPERATOR.lower()).ok


def test_an_edited_body_no_longer_matches_its_hash() -> None:
    seq, text, digest, sig, prev = chain(2)[1]
    edited = text.replace('"fee":"200"', '"fee":"1"')
    assert edited != text
    r = check_receipt(seq, edited, digest, sig, prev, OPERATOR)
    assert not r.ok and r.seq == 2
    rehashed = receipt_hash(json.loads(edited))
    assert r.problem == f"its body hashes to {rehashed}, not the stored {digest}"


def test_an_edited_and_rehashed_body_has_a_foreign_signature() -> None:
    seq, text, _, sig, prev = chain(2)[1]
    edited = text.replace('"fee":"200"', '"fee":"1"')
    r = check_receipt(seq, edited, receipt_hash(json.loads(edited)), sig, prev, OPERATOR)
    assert not r.ok and "not the operator" in r.problem


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace(",", ", ", 1),  # whitespace
        lambda t: json.dumps(json.loads(t)),  # default separators
        lambda t: json.dumps(dict(reversed(list(json.loads(t).items()))), separators=(",", ":")),
    ],
)
def test_a_non_canonical_body_is_refused_even_if_its_content_is_intact(mangle: Any) -> None:
    seq, text, digest, sig, prev = chain(1)[0]
    mangled = mangle(text)
    assert json.loads(mangled) == json.loads(text) and mangled != text
    r = check_receipt(seq, mangled, digest, sig, prev, OPERATOR)
    assert not r.ok and r.problem == "its body is not in canonical form (it was edited)"


def test_a_body_that_is_not_json() -> None:
    seq, text, digest, sig, prev = chain(1)[0]
    r = check_receipt(seq, text[:-1], digest, sig, prev, OPERATOR)
    assert not r.ok and r.problem == "its body is not JSON"


def test_reordered_receipts_are_detected_by_seq() -> None:
    receipts = chain(3)
    # stored in the order 1, 3, 2: the row at seq 2 holds receipt 3
    _, text3, digest3, sig3, _ = receipts[2]
    r = check_receipt(2, text3, digest3, sig3, receipts[0][2], OPERATOR)
    assert not r.ok and r.problem == "its body says seq 3 (reordered)"


def test_a_wrong_prev_breaks_the_chain() -> None:
    receipts = chain(3)
    # receipt 3 checked right after receipt 1 (receipt 2 dropped and 3 renumbered is seq's
    # concern; here the seq is right but the hash before it is not the one it names)
    seq, text, digest, sig, named_prev = receipts[2]
    r = check_receipt(seq, text, digest, sig, receipts[0][2], OPERATOR)
    assert not r.ok
    assert r.problem == (
        f"its prev is {named_prev}, but the receipt before it hashes to {receipts[0][2]} "
        "(the chain is broken or reordered)"
    )
    # a receipt re-made with another prev, correctly hashed and signed, still breaks it
    body = json.loads(receipts[1][1]) | {"prev": GENESIS}
    forged = receipt_hash(body)
    sig2 = ReceiptSigner(OPERATOR_KEY).sign(forged)
    r2 = check_receipt(2, canonical_json(body).decode(), forged, sig2, receipts[0][2], OPERATOR)
    assert not r2.ok and "chain is broken" in r2.problem


def test_a_wrong_seq_in_the_body() -> None:
    seq, text, _, _, prev = chain(1)[0]
    body = json.loads(text) | {"seq": 7}
    digest = receipt_hash(body)
    sig = ReceiptSigner(OPERATOR_KEY).sign(digest)
    r = check_receipt(seq, canonical_json(body).decode(), digest, sig, prev, OPERATOR)
    assert not r.ok and r.problem == "its body says seq 7 (reordered)"


def test_a_foreign_signature_is_named() -> None:
    seq, text, digest, _, prev = chain(1)[0]
    foreign = ReceiptSigner(OTHER_KEY)
    r = check_receipt(seq, text, digest, foreign.sign(digest), prev, OPERATOR)
    assert not r.ok
    assert r.problem == (
        f"its signature recovers to {foreign.address}, not the operator {OPERATOR}"
    )
    bad = check_receipt(seq, text, digest, "0xdeadbeef", prev, OPERATOR)
    assert not bad.ok and bad.problem == (
        f"its signature recovers to nothing, not the operator {OPERATOR}"
    )
