"""The ledger writer's driver-level statements (rows, credit debits) store what the ORM
would, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from openledger.ledger.receipts.writer_db import debit, insert_many
from openledger.store.db import Database
from openledger.store.ledger_tables import CreditRow, EarningRow, ReceiptRow


def test_insert_many_round_trips_wei_text_and_timestamps(db: Database) -> None:
    stamp = datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC)
    big = 2**255 + 7  # wei beyond 64 bits: stored as exact decimal text
    receipts = [
        {
            "seq": i,
            "hash": f"0x{i:064x}",
            "prev_hash": f"0x{i - 1:064x}",
            "content_hash": f"0x{i + 100:064x}",
            "head_signature": "0xsig" if i == 2 else "",
            "payer": "0xPayer",
            "model_id": 1,
            "fee": big + i,
            "epoch": None,
            "body": "{}",
            "created_at": stamp,
        }
        for i in (1, 2)
    ]
    earnings = [
        {
            "receipt_seq": 1,
            "account": "0xA",
            "role": "owner",
            "amount": big,
            "model_id": 1,
            "datanet_id": None,
            "contribution_id": None,
        },
        {
            "receipt_seq": 1,
            "account": "0xB",
            "role": "contributor",
            "amount": 5,
            "model_id": 1,
            "datanet_id": 3,
            "contribution_id": 9,
        },
    ]
    with db.session() as s:
        conn = s.connection()
        insert_many(conn, ReceiptRow.__table__, receipts)
        insert_many(conn, EarningRow.__table__, earnings)
        insert_many(conn, EarningRow.__table__, [])  # nothing to write is no statement
        s.commit()
    with db.session() as s:
        rows = s.query(ReceiptRow).order_by(ReceiptRow.seq).all()
        assert [(r.seq, r.fee, r.head_signature, r.epoch) for r in rows] == [
            (1, big + 1, "", None),
            (2, big + 2, "0xsig", None),
        ]
        assert all(r.created_at == stamp for r in rows)
        got = s.query(EarningRow).order_by(EarningRow.account).all()
        assert [(e.account, e.amount, e.datanet_id, e.contribution_id) for e in got] == [
            ("0xA", big, None, None),
            ("0xB", 5, 3, 9),
        ]


def test_debit_adds_the_group_s_charges_and_returns_what_is_left(db: Database) -> None:
    then = datetime(2026, 11, 1, tzinfo=UTC)
    stamp = datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC)
    big = 2**200  # beyond 64 bits: wei are exact decimal text
    with db.session() as s:
        s.add(
            CreditRow(
                account="0xA",
                deposited=big,
                withdrawn=5,
                charged=10,
                collected=0,
                pending_withdrawal=7,
                withdrawal_ready_at=0,
                updated_at=then,
            )
        )
        s.add(
            CreditRow(
                account="0xB",
                deposited=100,
                withdrawn=0,
                charged=0,
                collected=0,
                pending_withdrawal=0,
                withdrawal_ready_at=0,
                updated_at=then,
            )
        )
        s.commit()
    with db.session() as s:
        left, used = debit(s, {"0xA": 3, "0xC": 4}, stamp)  # 0xC has no synced deposit yet
        s.commit()
    assert left == {"0xA": big - 5 - 13 - 7, "0xC": -4} and used == {}
    with db.session() as s:
        rows = {r.account: r for r in s.query(CreditRow)}
        assert (rows["0xA"].charged, rows["0xA"].updated_at) == (13, stamp)
        assert (rows["0xB"].charged, rows["0xB"].updated_at) == (0, then)  # not in the group
        assert (rows["0xC"].charged, rows["0xC"].deposited) == (4, 0)


def test_debit_consumes_the_node_s_credit_leases(db: Database) -> None:
    from openledger.store.ledger_tables import CreditLeaseRow

    stamp = datetime(2026, 11, 23, tzinfo=UTC)
    with db.session() as s:
        s.add(
            CreditRow(
                account="0xA",
                deposited=1000,
                withdrawn=0,
                charged=0,
                collected=0,
                pending_withdrawal=0,
                withdrawal_ready_at=0,
                held=600,
            )
        )
        s.add(CreditLeaseRow(account="0xA", node="n1", amount=500, renewed_at=stamp))
        s.add(CreditLeaseRow(account="0xA", node="n2", amount=100, renewed_at=stamp))
    with db.session() as s:  # holds of 120 settled by a fee of 70, on node n1
        left, used = debit(s, {"0xA": 70}, stamp, {"0xA": 120}, "n1")
    assert left == {"0xA": 930} and used == {"0xA": 120}
    with db.session() as s:
        row = s.get(CreditRow, "0xA")
        assert (row.charged, row.held) == (70, 480)
        assert s.get(CreditLeaseRow, ("0xA", "n1")).amount == 380
        assert s.get(CreditLeaseRow, ("0xA", "n2")).amount == 100  # another node's: untouched
    with db.session() as s:  # a lease cut below the holds (a withdrawal): only what is left
        _, used = debit(s, {"0xA": 10}, stamp, {"0xA": 500}, "n1")
    assert used == {"0xA": 380}
    with db.session() as s:
        assert s.get(CreditRow, "0xA").held == 100
