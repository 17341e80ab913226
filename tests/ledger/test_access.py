"""Datanet access fees on the devnet: prices within the bound, who pays, payment through the
one write path, the signed records and their settlement (exact wei) and audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from openledger.errors import (
    ConflictError,
    ForbiddenError,
    InsufficientFundsError,
    NotFoundError,
    PaymentRequiredError,
    ValidationError,
)
from openledger.governance.devnet import as_timelock
from openledger.ledger.access import AccessDueError
from openledger.ledger.pricing.fees import allocate
from openledger.ledger.receipts.canonical import canonical_json, content_hash, recover_signer
from openledger.store.ledger_tables import AccessEarningRow, AccessRow
from openledger.units import OPEN
from tests.ledger.settlement.test_epochs import fast_forward, paid
from tests.market import Market

pytestmark = pytest.mark.anvil

EXPORT_PRICE = 5 * OPEN + 3  # odd wei, so every division has a remainder
TRAIN_PRICE = 12 * OPEN + 7


def price(m: Market, export: int = EXPORT_PRICE, train: int = TRAIN_PRICE) -> dict:
    node = m.node
    plan = node.access.plan_set_prices("facts", export=export, train=train, owner=m.addr("dave"))
    return plan.run(node.accounts.signer("dave"))


def pay(m: Market, who: str, kind: str) -> dict:
    node = m.node
    return node.access.plan_pay("facts", 1, kind, m.addr(who)).run(node.accounts.signer(who))


def nonce(m: Market, who: str) -> int:
    return m.node.client.w3.eth.get_transaction_count(m.addr(who))


def test_prices_are_set_by_the_owner_within_the_bound(market: Market) -> None:
    node = market.node
    assert node.access.prices("facts")["export"] == "0"
    doc = price(market)
    assert (doc["export"], doc["train"]) == (str(EXPORT_PRICE), str(TRAIN_PRICE))
    assert node.contracts.datanets.access_prices(1) == (EXPORT_PRICE, TRAIN_PRICE)
    before = nonce(market, "dave"), nonce(market, "grace")
    with pytest.raises(ForbiddenError) as e:
        node.access.plan_set_prices("facts", export=1, train=1, owner=market.addr("grace"))
    assert e.value.field == "as"
    with pytest.raises(ValidationError) as e:
        node.access.plan_set_prices(
            "facts", export=1_000 * OPEN + 1, train=0, owner=market.addr("dave")
        )
    assert e.value.field == "export" and "max_access_price" in e.value.message
    assert "propose a higher bound" in e.value.fix
    assert (nonce(market, "dave"), nonce(market, "grace")) == before  # nothing sent


def test_contributors_and_the_owner_read_free_others_pay(market: Market, tmp_path: Path) -> None:
    node = market.node
    price(market)
    assert node.access.quote("facts", 1, "export", market.addr("alice"))["reason"] == "contributor"
    assert node.access.quote("facts", 1, "train", market.addr("dave"))["reason"] == "owner"
    due = node.access.quote("facts", 1, "export", market.addr("grace"))
    assert due["due"] and due["price"] == str(EXPORT_PRICE) and due["reason"] == "payment due"
    # frank's rejected contribution does not matter: his approved one is in the snapshot
    assert not node.access.quote("facts", 1, "export", market.addr("frank"))["due"]
    out = tmp_path / "facts.jsonl"
    node.snapshots.export("facts@1", "jsonl", out, account=market.addr("alice"))
    assert len(out.read_text().splitlines()) == 3
    refused = tmp_path / "grace.jsonl"
    with pytest.raises(PaymentRequiredError) as e:
        node.snapshots.export("facts@1", "jsonl", refused, account=market.addr("grace"))
    assert (
        e.value.http_status == 402
        and "pay the access fee of facts@1 for an export" in e.value.fix
        and "nothing was charged" in e.value.fix
    )
    assert not refused.exists() and not list(tmp_path.glob("grace*"))


def test_a_paid_export_is_recorded_once_and_opens_the_snapshot(
    market: Market, tmp_path: Path
) -> None:
    node = market.node
    price(market)
    c = node.contracts
    grace, dist = market.addr("grace"), c.rewards.address
    before = c.token.balance_of(grace), c.token.balance_of(dist)
    doc = pay(market, "grace", "export")
    assert (doc["access"], doc["kind"], doc["amount"]) == (1, "export", str(EXPORT_PRICE))
    assert c.token.balance_of(grace) == before[0] - EXPORT_PRICE
    assert c.token.balance_of(dist) == before[1] + EXPORT_PRICE
    node.sync_chain()  # the event again: still one record
    with node.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AccessRow)) == 1
    out = node.snapshots.export("facts@1", "parquet", tmp_path / "f.parquet", account=grace)
    assert out.stat().st_size > 0
    node.snapshots.export("facts@1", "jsonl", tmp_path / "f.jsonl", account=grace)  # again
    with pytest.raises(ConflictError) as e:
        node.access.plan_pay("facts", 1, "export", grace)
    assert "already paid" in e.value.message


def test_paying_is_refused_before_anything_is_sent(market: Market) -> None:
    node = market.node
    # free: nothing to pay
    with pytest.raises(ConflictError) as e:
        node.access.plan_pay("facts", 1, "export", market.addr("grace"))
    assert "nothing to pay" in e.value.message
    price(market)
    with pytest.raises(ConflictError) as e:
        node.access.plan_pay("facts", 1, "train", market.addr("erin"))
    assert "contributor" in e.value.message
    # a short balance: the payer's nonce does not move
    poor = node.create_account("poor")["address"]
    grace = node.accounts.signer("grace")
    node.contracts.token.transfer(
        node.accounts.signer("poor"), grace.address, node.contracts.token.balance_of(poor) - OPEN
    )
    before = node.client.w3.eth.get_transaction_count(poor)
    with pytest.raises(InsufficientFundsError) as e:
        node.access.plan_pay("facts", 1, "export", poor)
    assert e.value.http_status == 402 and "top up" in e.value.fix
    assert node.client.w3.eth.get_transaction_count(poor) == before
    # a payment for a training job the Model Factory would refuse: refused first
    erin = market.addr("erin")
    before = node.client.w3.eth.get_transaction_count(grace.address)
    with pytest.raises(NotFoundError) as e:
        node.access.plan_pay("facts", 1, "train", grace.address, training=("/no/base", {}))
    assert e.value.field == "base"
    with pytest.raises(NotFoundError):
        node.access.plan_pay("facts", 9, "train", grace.address, training=("/no/base", {}))
    assert node.client.w3.eth.get_transaction_count(grace.address) == before
    with pytest.raises(ConflictError):  # a valid job: on to the payment's own checks
        node.access.plan_pay("facts", 1, "train", erin, training=("hub/base", {}))
    # straight to the contract without an allowance: the chain refuses and names the fix
    with pytest.raises(InsufficientFundsError) as e:
        node.contracts.datanets.pay_access(grace, 1, 1, node.contracts.datanets.EXPORT)
    assert "insufficient allowance" in e.value.message and "approve" in e.value.fix
    assert node.contracts.datanets.access_count() == 0


def test_a_training_access_is_spent_by_one_job(market: Market, tmp_path: Path) -> None:
    node = market.node
    price(market)
    base = str(tmp_path / "base")
    Path(base).mkdir()
    (Path(base) / "config.json").write_text("{}")
    grace = market.addr("grace")
    with pytest.raises(AccessDueError):
        node.jobs.submit_train("facts@1", base, {}, owner=grace)
    assert node.jobs.list()["items"] == []
    access = pay(market, "grace", "train")["access"]
    job = node.jobs.submit_train("facts@1", base, {}, owner=grace)
    assert job["params"]["access"]["access"] == access
    assert node.access.get(access)["used_by"] == f"job:{job['id']}"
    with pytest.raises(AccessDueError):  # spent
        node.jobs.submit_train("facts@1", base, {}, owner=grace)
    assert len(node.jobs.list()["items"]) == 1
    # a contributor trains free, without any access
    free = node.jobs.submit_train("facts@1", base, {}, owner=market.addr("erin"))
    assert free["params"]["access"]["reason"] == "contributor"


def _expected_leaves(m: Market, fees: list[int]) -> dict[str, int]:
    """The fees' split by hand: each fee's 10/20/20/50 bps parts; the platform and owner
    parts paid per fee, the stakers' and contributors' parts of the epoch summed and divided
    once (as the seal divides pools): by stake (alice 10, erin 30, frank 20 OPEN) and by
    approved records (one each)."""
    out = {m.node.contracts.timelock.address: 0, m.addr("dave"): 0}
    stakers = contributors = 0
    for fee in fees:
        parts = allocate(
            fee, {"platform": 1000, "owner": 2000, "stakers": 2000, "contributors": 5000}
        )
        out[m.node.contracts.timelock.address] += parts["platform"]
        out[m.addr("dave")] += parts["owner"]
        stakers += parts["stakers"]
        contributors += parts["contributors"]
    c = m.contributions
    who = {c["alice"]: "alice", c["erin"]: "erin", c["frank"]: "frank"}
    stakes = allocate(stakers, {c["alice"]: 10, c["erin"]: 30, c["frank"]: 20})
    records = allocate(contributors, {c["alice"]: 1, c["erin"]: 1, c["frank"]: 1})
    for shares in (stakes, records):
        for cid, v in shares.items():
            out[m.addr(who[cid])] = out.get(m.addr(who[cid]), 0) + v
    return out


def test_an_epoch_of_access_fees_alone_pays_them_out_and_audits(market: Market) -> None:
    node = market.node
    price(market)
    pay(market, "grace", "export")
    pay(market, "grace", "train")
    fee = EXPORT_PRICE + TRAIN_PRICE
    assert node.epochs.unsettled_accesses() == 2
    doc = node.epochs.close()
    assert doc["status"] == "settled" and doc["receipts"] == 0
    assert (doc["accesses"], doc["access_fees"]) == (2, str(fee))
    expected = _expected_leaves(market, [EXPORT_PRICE, TRAIN_PRICE])
    row = node.epochs.get_row(1)
    assert {a: int(v) for a, v in row.leaves.items()} == expected
    assert int(doc["total"]) == fee == sum(expected.values())
    assert node.contracts.rewards.epochs(1)[1] == fee
    # every record is signed by the operator over its content hash
    operator = node.accounts.operator_address()
    for n in (1, 2):
        rec = node.access.get(n)
        assert recover_signer(rec["content_hash"], rec["signature"]) == operator
    report = node.auditor.audit(1)
    assert report.ok, report.problems
    # claims move the balances by exactly the leaves
    fast_forward(node)
    for name in ("alice", "erin", "frank", "dave"):
        before = node.contracts.token.balance_of(market.addr(name))
        node.rewards.claim(market.addr(name), node.accounts.signer(name))
        assert (
            node.contracts.token.balance_of(market.addr(name)) - before
            == expected[market.addr(name)]
        )
    earned = node.rewards.earnings(market.addr("erin"))
    assert earned["by_source"] == {"access": str(expected[market.addr("erin")])}


def test_access_fees_and_receipts_settle_in_one_epoch(market: Market) -> None:
    node = market.node
    price(market)
    fees = paid(market, 2)
    pay(market, "grace", "export")
    doc = node.epochs.close()
    assert (doc["receipts"], doc["accesses"]) == (2, 1)
    assert int(doc["total"]) == sum(fees) + EXPORT_PRICE
    assert node.auditor.audit(1).ok
    # the next epoch has only an access fee: the receipts' head stays where it was
    fast_forward(node)
    pay(market, "grace", "train")
    second = node.epochs.close()
    assert second["status"] == "settled" and second["receipts"] == 0
    assert second["receipts_head"] == doc["receipts_head"]
    assert int(second["total"]) == int(doc["total"]) + TRAIN_PRICE
    report = node.auditor.audit(2)
    assert report.ok, report.problems


def test_the_audit_names_an_altered_access_record(market: Market) -> None:
    node = market.node
    price(market)
    pay(market, "grace", "export")
    node.epochs.close()
    with node.db.session() as s:
        original = s.get(AccessRow, 1).body
    body = json.loads(original)
    body["payouts"][0]["amount"] = str(int(body["payouts"][0]["amount"]) + 1)
    edited = canonical_json(body).decode()

    def store(**values: object) -> None:
        with node.db.session() as s:
            s.execute(update(AccessRow).where(AccessRow.access_id == 1).values(**values))

    store(body=edited)
    assert node.auditor.audit(1).problems[0].startswith("access 1: its body hashes to")
    # with its hash fixed, the operator's signature no longer covers it
    store(content_hash=content_hash(body))
    problems = node.auditor.audit(1).problems
    assert problems[0].startswith("access 1: its signature recovers to")
    assert "differs from the one recomputed" in problems[1]
    store(body=original, content_hash=content_hash(json.loads(original)))
    assert node.auditor.audit(1).ok


def test_the_epoch_timer_closes_an_epoch_of_access_fees(market: Market) -> None:
    node = market.node
    later = datetime.now(UTC) + timedelta(days=2)
    assert not node.epochs.due(now=later)
    price(market)
    pay(market, "grace", "train")
    assert node.epochs.due(now=later) and not node.epochs.due(now=datetime.now(UTC))


def test_a_lowered_bound_lowers_what_is_charged(market: Market) -> None:
    node = market.node
    price(market)
    fns = node.contracts.params.contract.functions
    as_timelock(node.contracts, fns.setParam("max_access_price", 2 * OPEN))
    node.params.invalidate()
    assert node.access.prices("facts")["export"] == str(2 * OPEN)
    assert pay(market, "grace", "export")["amount"] == str(2 * OPEN)
    with node.db.session() as s:
        earned = s.scalar(select(func.count()).select_from(AccessEarningRow))
    assert earned == 2  # platform and owner now; the pools at the seal
