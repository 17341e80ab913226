"""`audit`: recomputes an epoch from its stored receipts and names what was tampered with."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from openledger.ledger.receipts.canonical import GENESIS, canonical_json, content_hash, link_hash
from openledger.store.ledger_tables import ReceiptRow
from tests.ledger.settlement.test_epochs import paid
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


def test_an_edited_payout_with_its_hash_fixed_no_longer_fits_its_place(market: Market) -> None:
    """Editing a payout and fixing the content hash is not enough: the link hash, which the
    group's signed head commits to, was made over the old content."""
    _settled(market)
    body = _body(market, 3)
    body["payouts"][0]["amount"] = str(int(body["payouts"][0]["amount"]) + 5)
    _set(market, 3, body=canonical_json(body).decode(), content_hash=content_hash(body))
    problems = market.node.auditor.audit(1).problems
    assert problems[0].startswith("receipt 3: its place in the chain hashes to")


def test_a_rewritten_chain_is_caught_by_the_signed_head(market: Market) -> None:
    """Links need no key: someone who re-links the chain after swapping two receipts makes
    every link check out, but not the operator's signature of the group's last hash."""
    _settled(market)
    with market.node.db.session() as s:
        rows = {r.seq: r for r in s.query(ReceiptRow).filter(ReceiptRow.seq.in_([1, 2, 3, 4]))}
        moved = {q: {f: getattr(rows[q], f) for f in ("content_hash", "body")} for q in (2, 3)}
    prev = rows[1].hash
    _set(market, 2, hash="0x" + "ee" * 32)  # the hash column is unique
    for seq, src in ((2, 3), (3, 2), (4, 4)):
        fields = moved.get(src) or {"content_hash": rows[4].content_hash}
        link = link_hash(prev, seq, fields["content_hash"])
        _set(market, seq, **fields, hash=link, prev_hash=prev)
        prev = link
    problems = market.node.auditor.audit(1).problems
    assert problems[0].startswith("receipt 2: its head signature recovers to")


def test_reordered_receipts_are_named(market: Market) -> None:
    _settled(market)
    fields = ("hash", "prev_hash", "content_hash", "head_signature", "body")
    with market.node.db.session() as s:
        rows = {r.seq: r for r in s.query(ReceiptRow).filter(ReceiptRow.seq.in_([2, 3]))}
        a, b = ({f: getattr(rows[q], f) for f in fields} for q in (2, 3))
    _set(market, 2, hash="0x" + "ee" * 32)  # the hash column is unique
    _set(market, 3, **a)
    _set(market, 2, **b)
    problems = market.node.auditor.audit(1).problems
    assert problems[0].startswith("receipt 2: its place in the chain hashes to")
    assert problems[0].endswith("(the chain is broken or reordered)")


@pytest.mark.parametrize(
    ("where", "take", "give", "problem"),
    [
        ("payouts", "platform", "owner", "its payouts differ"),
        ("pools", "staker", "unattributed", "its pools differ"),
    ],
)
def test_a_split_that_does_not_follow_the_rules_is_named(
    market: Market, where: str, take: str, give: str, problem: str
) -> None:
    """A receipt that moves a wei from one beneficiary (or pool) to another, signed by the
    operator (a dishonest operator), fails the recomputed split."""
    _settled(market, 1)
    node = market.node
    body = _body(market, 1)
    if where == "payouts":
        by_role = {p["role"]: p for p in body["payouts"]}
        by_role[take]["amount"] = str(int(by_role[take]["amount"]) - 1)
        by_role[give]["amount"] = str(int(by_role[give]["amount"]) + 1)
    else:
        body["pools"][take] = str(int(body["pools"][take]) - 1)
        body["pools"][give] = str(int(body["pools"][give]) + 1)
    chash = content_hash(body)
    signer = node.ledger._signer
    link = link_hash(GENESIS, 1, chash)
    _set(
        market,
        1,
        body=canonical_json(body).decode(),
        content_hash=chash,
        hash=link,
        head_signature=signer.sign(link),
    )
    problems = node.auditor.audit(1).problems
    assert problems[0] == (f"receipt 1: {problem} from the split recomputed from its own inputs")
    assert any("differs from the root" in p for p in problems)


def test_a_missing_receipt_and_an_unposted_epoch(market: Market) -> None:
    _settled(market)
    with market.node.db.session() as s:
        from openledger.store.ledger_tables import EarningRow, PoolRow

        s.query(EarningRow).filter(EarningRow.receipt_seq == 4).delete()
        s.query(PoolRow).filter(PoolRow.receipt_seq == 4).delete()
        s.query(ReceiptRow).filter(ReceiptRow.seq == 4).delete()
    problems = market.node.auditor.audit(1).problems
    assert any("receipts head on chain" in p for p in problems)
    assert market.node.auditor.audit(7).problems == ["epoch 7 was never sealed on this node"]
    assert json.dumps(market.node.auditor.audit(1).to_dict())
