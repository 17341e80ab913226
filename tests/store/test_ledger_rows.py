"""The ledger writer's direct executemany stores what the ORM would, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from openledger.ledger.writing import insert_many
from openledger.store.db import Database
from openledger.store.ledger_tables import EarningRow, ReceiptRow


def test_insert_many_round_trips_wei_text_and_timestamps(db: Database) -> None:
    stamp = datetime(2026, 11, 23, 15, 4, 5, 123456, tzinfo=UTC)
    big = 2**255 + 7  # wei beyond 64 bits: stored as exact decimal text
    receipts = [
        {"seq": i, "hash": f"0x{i:064x}", "prev_hash": f"0x{i - 1:064x}",
         "content_hash": f"0x{i + 100:064x}", "head_signature": "0xsig" if i == 2 else "",
         "payer": "0xPayer", "model_id": 1, "fee": big + i, "epoch": None, "body": "{}",
         "created_at": stamp}
        for i in (1, 2)
    ]  # fmt: skip
    earnings = [
        {"receipt_seq": 1, "account": "0xA", "role": "owner", "amount": big, "model_id": 1,
         "datanet_id": None, "contribution_id": None},
        {"receipt_seq": 1, "account": "0xB", "role": "contributor", "amount": 5, "model_id": 1,
         "datanet_id": 3, "contribution_id": 9},
    ]  # fmt: skip
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
