"""`audit`: recomputes an epoch from its stored receipts and names what was tampered with."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from openledger.ledger.receipts import canonical_json, receipt_hash
from openledger.store.ledger_tables import ReceiptRow
from tests.ledger.test_epochs import paid
from tests.market import Market

pytestmark = pytest.mark.anvil


def _settled(m: Market, n: int = 4) -> None:
    paid(m, n)
    assert m.node.epochs.close()["status"] == "settled"
    assert m.node.auditor.audit(1).ok


def _set(m: Market, seq: int, **values: object) -> None:
    with m.node.db.session() as s:
        s.execute(update(ReceiptRow).where(ReceiptRow.seq == seq).values(**values))


def _body(m: Market, seq: int) -> dict:
    return m.node.ledger.receipt(seq)["receipt"]


def test_an_edited_fee_is_named(market: Market) -> None:
    _settled(market)
    body = _body(market, 2)
    body["fee"] = str(int(body["fee"]) + 1)
    _set(market, 2, body=canonical_json(body).decode())
    report = market.node.auditor.audit(1)
    assert not report.ok and report.problems[0].startswith("receipt 2: its body hashes to")


def test_a_re_signed_forgery_is_caught_by_the_signature(market: Market) -> None:
    """Editing a payout and fixing the hash is not enough: the operator did not sign it."""
    _settled(market)
    body = _body(market, 3)
    body["payouts"][0]["amount"] = str(int(body["payouts"][0]["amount"]) + 5)
    _set(market, 3, body=canonical_json(body).decode(), hash=receipt_hash(body))
    problems = market.node.auditor.audit(1).problems
    assert any(p.startswith("receipt 3: its signature recovers to") for p in problems)
    assert any("receipt 4: its prev is" in p for p in problems)  # the chain breaks after it


def test_reordered_receipts_are_named(market: Market) -> None:
    _settled(market)
    fields = ("hash", "prev_hash", "signature", "body")
    with market.node.db.session() as s:
        rows = {r.seq: r for r in s.query(ReceiptRow).filter(ReceiptRow.seq.in_([2, 3]))}
        a, b = ({f: getattr(rows[q], f) for f in fields} for q in (2, 3))
    _set(market, 2, hash="0x" + "ee" * 32)  # the hash column is unique
    _set(market, 3, **a)
    _set(market, 2, **b)
    problems = market.node.auditor.audit(1).problems
    assert problems[0].startswith("receipt 2: its body says seq 3 (reordered)")


def test_a_split_that_does_not_follow_the_rules_is_named(market: Market) -> None:
    """A receipt whose payouts move wei from one contributor to another, signed by the
    operator (a dishonest operator), fails the recomputed split."""
    _settled(market, 1)
    node = market.node
    body = _body(market, 1)
    contribs = [p for p in body["payouts"] if p["role"] == "unattributed"]
    contribs[0]["amount"] = str(int(contribs[0]["amount"]) + 1)
    contribs[1]["amount"] = str(int(contribs[1]["amount"]) - 1)
    digest = receipt_hash(body)
    signer = node.ledger._signer
    _set(market, 1, body=canonical_json(body).decode(), hash=digest, signature=signer.sign(digest))
    problems = node.auditor.audit(1).problems
    assert problems[0] == (
        "receipt 1: its payouts differ from the split recomputed from its own inputs"
    )
    assert any("differs from the root" in p for p in problems)


def test_a_missing_receipt_and_an_unposted_epoch(market: Market) -> None:
    _settled(market)
    with market.node.db.session() as s:
        from openledger.store.ledger_tables import EarningRow

        s.query(EarningRow).filter(EarningRow.receipt_seq == 4).delete()
        s.query(ReceiptRow).filter(ReceiptRow.seq == 4).delete()
    problems = market.node.auditor.audit(1).problems
    assert any("receipts head on chain" in p for p in problems)
    assert market.node.auditor.audit(7).problems == ["epoch 7 was never sealed on this node"]
    assert json.dumps(market.node.auditor.audit(1).to_dict())
