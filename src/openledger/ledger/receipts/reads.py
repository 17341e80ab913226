"""Receipts as the API and CLI serve them: one with the proof of its place, or a page."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from openledger.errors import NotFoundError
from openledger.ledger.credit.events import checksum
from openledger.ledger.receipts.ids import MAX_SEQ, is_public_id, receipt_ids
from openledger.store.db import Database
from openledger.store.ledger_tables import ReceiptRow


def _not_found(ref: int | str) -> NotFoundError:
    return NotFoundError(
        f"no receipt {str(ref)[:80]!r} on this node.",
        field="receipt",
        value=str(ref)[:80],
        fix="use the receipt_id a response returned (rc_…), or list the account's receipts.",
    )


def receipt_doc(db: Database, ref: int | str) -> dict[str, Any]:
    """A stored receipt by its public id (``rc_…``), its sequence number or its hash, with
    what proves its place: ``head`` is the signed last receipt of its group and
    ``head.content_hashes`` the content hashes of the receipts after it up to that head, so
    that ``hash = link_hash(prev, seq, content_hash)`` followed by ``link_hash`` over them
    gives ``head.hash``, which ``head.signature`` signs. Who may read which is the caller's
    business (``GET /receipts/{id}``: by public id anyone, otherwise the payer)."""
    ids = receipt_ids(db)
    with db.session() as s:
        text = str(ref)
        if isinstance(ref, int) or (text.isascii() and text.isdigit()):
            seq = int(text) if len(text) <= 19 else MAX_SEQ + 1
            row = s.get(ReceiptRow, seq) if 0 < seq <= MAX_SEQ else None
        elif is_public_id(text):
            seq_of = ids.seq_of(text)
            row = s.get(ReceiptRow, seq_of) if seq_of is not None else None
        else:
            row = s.scalars(select(ReceiptRow).where(ReceiptRow.hash == text.lower())).first()
        if row is None:
            raise _not_found(ref)
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
            "id": ids.public(row.seq),
            "seq": row.seq,
            "hash": row.hash,
            "prev": row.prev_hash,
            "content_hash": row.content_hash,
            "epoch": row.epoch,
            "head": None
            if head is None
            else {
                "seq": head.seq,
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
        ids = receipt_ids(db)
        total = int(s.execute(count).scalar_one())
        items = [
            {
                "id": ids.public(r.seq),
                "seq": r.seq,
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
