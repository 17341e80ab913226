"""The tokens each paid inference attributed, kept so the attribution can be recomputed.

A receipt's attribution names a ``query_hash`` (:func:`openledger.attribution.types.
query_hash`); the prompt and completion token ids it hashes are stored here under it,
before the charge is queued, so a receipt never names a query the node does not hold. The
same query twice is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from openledger.attribution.types import query_hash
from openledger.store.db import Database
from openledger.store.ledger_tables import ReceiptQueryRow


class ReceiptQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, prompt: Sequence[int], completion: Sequence[int]) -> str:
        """Store the query (once); its hash."""
        digest = query_hash(prompt, completion)
        try:
            with self.db.session() as s:
                if s.get(ReceiptQueryRow, digest) is None:
                    s.add(
                        ReceiptQueryRow(
                            query_hash=digest,
                            prompt=[int(t) for t in prompt],
                            completion=[int(t) for t in completion],
                        )
                    )
        except IntegrityError:  # stored by another request meanwhile: the same tokens
            pass
        return digest

    def get(self, digest: str) -> tuple[list[int], list[int]] | None:
        """(prompt ids, completion ids) of a stored query, or None."""
        with self.db.session() as s:
            row = s.scalar(select(ReceiptQueryRow).where(ReceiptQueryRow.query_hash == digest))
            return None if row is None else (list(row.prompt), list(row.completion))
