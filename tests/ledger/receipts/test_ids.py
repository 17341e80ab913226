"""Public receipt ids: unguessable, stable per node, and decodable only by their node."""

from __future__ import annotations

import random

from openledger.ledger.receipts.ids import ID_LEN, PREFIX, ReceiptIds, receipt_ids
from openledger.store.db import Database


def test_ids_round_trip_and_reveal_no_order(tmp_path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'a.db'}")
    ids = receipt_ids(db)
    public = [ids.public(seq) for seq in range(1, 201)]
    assert all(p.startswith(PREFIX) and len(p) == ID_LEN for p in public)
    assert [ids.seq_of(p) for p in public] == list(range(1, 201))
    assert sorted(public) != public  # not in sequence order
    assert len({p[:8] for p in public}) > 150  # no shared prefix gives neighbours away
    # the key lives in the database: another process on it (a new codec) agrees
    again = ReceiptIds(bytes.fromhex(_secret(db)))
    assert again.public(7) == public[6]
    db.dispose()


def test_guessed_and_foreign_ids_are_refused(tmp_path) -> None:
    a = receipt_ids(Database.open(f"sqlite:///{tmp_path / 'a.db'}"))
    b = receipt_ids(Database.open(f"sqlite:///{tmp_path / 'b.db'}"))
    assert a.public(1) != b.public(1)  # each node has its own key
    assert b.seq_of(a.public(1)) is None
    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    guesses = [PREFIX + "".join(rng.choice(alphabet) for _ in range(22)) for _ in range(2000)]
    assert [g for g in guesses if a.seq_of(g) is not None] == []
    for bad in ("", "rc_", "rc_!!!!", "1", PREFIX + "A" * 40, a.public(1)[:-1]):
        assert a.seq_of(bad) is None


def _secret(db: Database) -> str:
    from openledger.store.auth_tables import NodeSecretRow

    with db.session() as s:
        row = s.get(NodeSecretRow, "receipt_id_key")
        assert row is not None
        return row.value
