"""Receipts as the API and CLI serve them: one with the proof of its place, or a page."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from openledger.errors import NotFoundError
from openledger.ledger.credits import checksum
from openledger.store.db import Database
from openledger.store.ledger_tables import ReceiptRow


def receipt_doc(db: Database, ref: int | str) -> dict[str, Any]:
    """A stored receipt by id (its sequence number) or by hash, with what proves its
    place: ``head`` is the signed last receipt of its group and ``head.content_hashes``
    the content hashes of the receipts after it up to that head, so that
    ``hash = link_hash(prev, id, content_hash)`` followed by ``link_hash`` over them
    gives ``head.hash``, which ``head.signature`` signs."""
    with db.session() as s:
        if isinstance(ref, int) or str(ref).isdigit():
            row = s.get(ReceiptRow, int(ref))
        else:
            row = s.scalars(select(ReceiptRow).where(ReceiptRow.hash == str(ref).lower())).first()
        if row is None:
            raise NotFoundError(
                f"no receipt {ref!r} on this node.",
                field="receipt",
                value=str(ref),
                fix="use the receipt_id a response returned, or list them with "
                "`openledger receipts list`.",
            )
        head = s.execute(
            select(ReceiptRow.seq, ReceiptRow.hash, ReceiptRow.head_signature)
            .where(ReceiptRow.seq >= row.seq, ReceiptRow.head_signature != "")
            .order_by(ReceiptRow.seq)
            .limit(1)
        ).first()
        chain = (
            s.scalars(
                select(ReceiptRow.content_hash)
                .where(ReceiptRow.seq > row.seq, ReceiptRow.seq <= head.seq)
                .order_by(ReceiptRow.seq)
            ).all()
            if head is not None
            else []
        )
        return {
            "id": row.seq,
            "hash": row.hash,
            "prev": row.prev_hash,
            "content_hash": row.content_hash,
            "epoch": row.epoch,
            "head": None
            if head is None
            else {
                "id": head.seq,
                "hash": head.hash,
                "signature": head.head_signature,
                "content_hashes": list(chain),
            },
            "receipt": json.loads(row.body),
        }


def list_receipts(
    db: Database, *, payer: str | None = None, offset: int = 0, limit: int = 50
) -> dict:
    with db.session() as s:
        q = select(ReceiptRow)
        count = select(func.count()).select_from(ReceiptRow)
        if payer:
            payer = checksum(payer)
            q, count = (
                q.where(ReceiptRow.payer == payer),
                count.where(ReceiptRow.payer == payer),
            )
        rows = s.scalars(q.order_by(ReceiptRow.seq.desc()).offset(offset).limit(limit)).all()
        total = int(s.execute(count).scalar_one())
        items = [
            {
                "id": r.seq,
                "hash": r.hash,
                "payer": r.payer,
                "model_id": r.model_id,
                "fee": str(r.fee),
                "epoch": r.epoch,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]
    return {"total": total, "items": items}
