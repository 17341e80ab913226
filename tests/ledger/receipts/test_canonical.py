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

from openledger.ledger.receipts.canonical import (
    GENESIS,
    ReceiptSigner,
    canonical_json,
    check_head,
    check_receipt,
    check_served,
    content_hash,
    link_hash,
    recover_signer,
)

OPERATOR_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
OTHER_KEY = bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f")
OPERATOR = Account.from_key(OPERATOR_KEY).address

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    body = {"z": 1, "a": {"y": "é", "b": [1, 2, {"k": None}]}, "fee": "123"}
    text = b'{"a":{"b":[1,2,{"k":null}],"y":"\xc3\xa9"},"fee":"123","z":1}'
    assert canonical_json(body) == text
    # a pinned hash: the format must not drift, or every stored receipt stops verifying
    assert content_hash(body) == (
        "0x362d0bede25e5039c2b4d7262de236f7e93f4974f69cf0638edb611bda1c9f98"
    )
    assert content_hash(body) == "0x" + Web3.keccak(text).hex().removeprefix("0x")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_canonical_json_refuses_nan_and_infinities(bad: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": [1, {"y": bad}]})


def test_canonical_json_is_the_standard_librarys_bytes() -> None:
    """Fast path (orjson) and fallback (nulls, integers over 64 bits) write the same bytes
    as ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``."""
    for value in (
        {"b": [1, "é", {"z": True, "a": 'x\u2028"\\\x01'}], "a": "nullable"},
        {"k": None, "n": 2**70, "m": -(2**63)},
        [1.5, 0.1, 1e300],
    ):
        expect = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical_json(value) == expect.encode()


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8), st.randoms())
def test_canonical_json_is_stable_under_key_order_and_a_round_trip(
    body: dict[str, Any], rnd: Any
) -> None:
    items = list(body.items())
    rnd.shuffle(items)
    shuffled = dict(items)
    assert canonical_json(shuffled) == canonical_json(body)
    assert canonical_json(json.loads(canonical_json(body))) == canonical_json(body)
    assert content_hash(shuffled) == content_hash(body)


def test_a_signature_recovers_to_the_signer_and_matches_eth_account() -> None:
    signer = ReceiptSigner(OPERATOR_KEY)
    assert signer.address == OPERATOR
    digest = content_hash({"seq": 1, "fee": "10"})
    sig = signer.sign(digest)
    assert recover_signer(digest, sig) == OPERATOR
    # the same deterministic (RFC 6979) signature eth_account makes with personal_sign
    expected = Account.sign_message(
        encode_defunct(primitive=bytes.fromhex(digest[2:])), OPERATOR_KEY
    ).signature
    assert sig == "0x" + bytes(expected).hex()
    assert sig[-2:] in ("1b", "1c")  # v = 27 / 28
    other = content_hash({"seq": 1, "fee": "11"})
    assert recover_signer(other, sig) != OPERATOR
    assert recover_signer(digest, "0x1234") == ""


def test_the_link_hash_is_keccak_of_the_packed_prev_seq_and_content() -> None:
    prev, content = "0x" + "11" * 32, "0x" + "22" * 32
    packed = bytes.fromhex("11" * 32) + (7).to_bytes(32, "big") + bytes.fromhex("22" * 32)
    assert link_hash(prev, 7, content) == "0x" + Web3.keccak(packed).hex().removeprefix("0x")


Stored = tuple[int, str, str, str, str]  # seq, body text, content hash, hash, prev


def chain(n: int) -> list[Stored]:
    """``n`` chained receipts as stored: (seq, body, content hash, hash, prev)."""
    prev, out = GENESIS, []
    for seq in range(1, n + 1):
        body = {"v": 2, "fee": str(100 * seq), "payer": "0xgrace"}
        chash = content_hash(body)
        digest = link_hash(prev, seq, chash)
        out.append((seq, canonical_json(body).decode(), chash, digest, prev))
        prev = digest
    return out


def test_an_intact_chain_checks_out() -> None:
    for seq, text, chash, digest, prev in chain(4):
        assert check_receipt(seq, text, chash, digest, prev).ok


def test_an_edited_body_no_longer_matches_its_content_hash() -> None:
    seq, text, chash, digest, prev = chain(2)[1]
    edited = text.replace('"fee":"200"', '"fee":"1"')
    assert edited != text
    r = check_receipt(seq, edited, chash, digest, prev)
    assert not r.ok and r.seq == 2
    rehashed = content_hash(json.loads(edited))
    assert r.problem == f"its body hashes to {rehashed}, not the stored {chash}"


def test_an_edited_and_rehashed_body_no_longer_fits_its_place() -> None:
    seq, text, _, digest, prev = chain(2)[1]
    edited = text.replace('"fee":"200"', '"fee":"1"')
    r = check_receipt(seq, edited, content_hash(json.loads(edited)), digest, prev)
    assert not r.ok and r.problem.endswith("(the chain is broken or reordered)")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace(",", ", ", 1),  # whitespace
        lambda t: json.dumps(json.loads(t)),  # default separators
        lambda t: json.dumps(dict(reversed(list(json.loads(t).items()))), separators=(",", ":")),
    ],
)
def test_a_non_canonical_body_is_refused_even_if_its_content_is_intact(mangle: Any) -> None:
    seq, text, chash, digest, prev = chain(1)[0]
    mangled = mangle(text)
    assert json.loads(mangled) == json.loads(text) and mangled != text
    r = check_receipt(seq, mangled, chash, digest, prev)
    assert not r.ok and r.problem == "its body is not in canonical form (it was edited)"


def test_a_body_that_is_not_json() -> None:
    seq, text, chash, digest, prev = chain(1)[0]
    r = check_receipt(seq, text[:-1], chash, digest, prev)
    assert not r.ok and r.problem == "its body is not JSON"


def test_reordered_receipts_break_the_links_and_relinking_breaks_the_signed_head() -> None:
    receipts = chain(3)
    # stored in the order 1, 3, 2: the row at seq 2 holds receipt 3
    _, text3, chash3, digest3, _ = receipts[2]
    r = check_receipt(2, text3, chash3, digest3, receipts[0][3])
    relinked = link_hash(receipts[0][3], 2, chash3)
    assert not r.ok and r.problem == (
        f"its place in the chain hashes to {relinked} (after {receipts[0][3]}), not the stored "
        f"{digest3} (the chain is broken or reordered)"
    )
    # the links re-computed to fit the new order check out one by one (they need no key)…
    assert check_receipt(2, text3, chash3, relinked, receipts[0][3]).ok
    # …but the head the operator signed over the old order no longer matches
    head = ReceiptSigner(OPERATOR_KEY).sign(receipts[2][3])
    assert check_head(3, receipts[2][3], head, OPERATOR) == ""
    moved = link_hash(relinked, 3, receipts[1][2])
    assert "not the operator" in check_head(3, moved, head, OPERATOR)


def test_a_dropped_receipt_breaks_the_chain() -> None:
    receipts = chain(3)
    # receipt 3 checked right after receipt 1: not the hash it was linked to
    seq, text, chash, digest, _ = receipts[2]
    r = check_receipt(seq, text, chash, digest, receipts[0][3])
    assert not r.ok and "the chain is broken or reordered" in r.problem


def test_a_foreign_or_malformed_head_signature_is_named() -> None:
    _, _, _, digest, _ = chain(1)[0]
    foreign = ReceiptSigner(OTHER_KEY)
    assert check_head(1, digest, foreign.sign(digest), OPERATOR) == (
        f"its head signature recovers to {foreign.address}, not the operator {OPERATOR} "
        "(the chain up to it was rewritten)"
    )
    assert check_head(1, digest, "0xdeadbeef", OPERATOR).startswith(
        "its head signature recovers to nothing"
    )
    assert check_head(1, digest, ReceiptSigner(OPERATOR_KEY).sign(digest), OPERATOR.lower()) == ""


def served(receipts: list[Stored], i: int, head: int) -> dict[str, Any]:
    """As ``GET /receipts/{id}`` serves it: ``id`` is the public id, ``seq`` its place."""
    seq, text, chash, digest, prev = receipts[i]
    return {
        "id": f"rc_{seq:022d}",
        "seq": seq,
        "hash": digest,
        "prev": prev,
        "content_hash": chash,
        "receipt": json.loads(text),
        "head": {
            "seq": receipts[head][0],
            "hash": receipts[head][3],
            "signature": ReceiptSigner(OPERATOR_KEY).sign(receipts[head][3]),
            "content_hashes": [r[2] for r in receipts[i + 1 : head + 1]],
        },
    }


def test_a_served_receipt_proves_its_content_and_place_alone() -> None:
    receipts = chain(5)
    for i in range(5):
        assert check_served(served(receipts, i, 4), OPERATOR) == ""
    doc = served(receipts, 1, 4)
    doc["head"]["content_hashes"][0] = receipts[3][2]  # a wrong receipt after it
    assert check_served(doc, OPERATOR).startswith("the hashes after it lead to")
    doc = served(receipts, 1, 4) | {"head": None}
    assert check_served(doc, OPERATOR) == "it names no signed head (its group was not committed)"
    doc = served(receipts, 1, 4)
    doc["receipt"]["fee"] = "1"
    assert check_served(doc, OPERATOR).startswith("its body hashes to")
    doc = served(receipts, 1, 4)
    doc["head"]["signature"] = ReceiptSigner(OTHER_KEY).sign(doc["head"]["hash"])
    assert "not the operator" in check_served(doc, OPERATOR)
