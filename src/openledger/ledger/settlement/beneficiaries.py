"""Who a model's fees can reach: the contributions of its training snapshot(s).

Stakers earn pro rata to the OPEN still staked on approved contributions (a stake that was
slashed or withdrawn earns nothing); the unattributed part of the contributors' share goes
to the same contributions pro rata to their approved records. Both parts are pooled per
receipt and divided once per epoch over the set the receipt names (``pricing.divide_pools``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openledger.ledger.pricing.fees import Beneficiary, Members, Payout, divide_pools
from openledger.ledger.receipts.canonical import canonical_json, hash_hex
from openledger.store.datanet_tables import ContributionRow, DatanetRow, SnapshotRow
from openledger.store.db import Database
from openledger.store.ledger_tables import BeneficiarySetRow, PoolRow, ReceiptRow

SET_TTL = 60.0  # seconds a model's beneficiary set is reused before it is read again


def training_contributions(s: Session, snapshot_roots: Sequence[str]) -> list[Beneficiary]:
    """The approved contributions of the snapshots with these roots, sorted by id."""
    snaps = s.scalars(select(SnapshotRow).where(SnapshotRow.root.in_(list(snapshot_roots))))
    ids = sorted({int(c) for snap in snaps for c in snap.contribution_ids})
    if not ids:
        return []
    rows = s.execute(
        select(ContributionRow, DatanetRow.chain_id)
        .join(DatanetRow, DatanetRow.id == ContributionRow.datanet_id)
        .where(ContributionRow.chain_id.in_(ids))
        .order_by(ContributionRow.chain_id)
    ).all()
    out = []
    for con, datanet_chain_id in rows:
        if con.status != "approved":
            continue
        stake = 0 if con.withdrawn else max(0, con.stake - con.slashed)
        out.append(
            Beneficiary(
                contribution=int(con.chain_id),
                datanet=int(datanet_chain_id),
                contributor=con.contributor,
                records=int(con.record_count),
                stake=int(stake),
            )
        )
    return out


def set_body(model_id: int, beneficiaries: Sequence[Beneficiary]) -> dict[str, Any]:
    return {
        "model": model_id,
        "contributions": [
            [b.contribution, b.datanet, b.contributor, b.records, str(b.stake)]
            for b in beneficiaries
        ],
    }


def set_hash(body: dict[str, Any]) -> str:
    return hash_hex(canonical_json(body))


def from_body(body: dict[str, Any]) -> list[Beneficiary]:
    return [
        Beneficiary(
            contribution=int(c), datanet=int(d), contributor=str(a), records=int(r), stake=int(st)
        )
        for c, d, a, r, st in body["contributions"]
    ]


@dataclass(frozen=True)
class BeneficiarySet:
    """A model's beneficiary set as priced: its hash, members and stored form."""

    hash: str
    model_id: int
    members: Members
    body: str
    read_at: float


class BeneficiaryCache:
    """The beneficiary set of each model the ledger prices, read at most once a ``SET_TTL``.

    Keyed per model and snapshot roots: stakes of approved contributions change only when
    one is withdrawn after the unlock delay (possibly by another process), so a minute of
    staleness moves no wei that was not already due. The receipt writer stores a set (once
    per hash) in the transaction of its first receipt."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self._clock = clock
        self._sets: dict[tuple[int, tuple[str, ...]], BeneficiarySet] = {}

    def get(self, model: dict[str, Any]) -> BeneficiarySet:
        """The model's training contributions and the hash of that set."""
        key = (int(model["id"]), tuple(model.get("snapshot_roots") or ()))
        cached = self._sets.get(key)
        now = self._clock()
        if cached is not None and now - cached.read_at < SET_TTL:
            return cached
        with self.db.session() as s:
            members = training_contributions(s, key[1])
        body = set_body(key[0], members)
        digest = set_hash(body)
        fresh = BeneficiarySet(
            digest, key[0], Members.of(members), canonical_json(body).decode(), now
        )
        self._sets[key] = fresh
        return fresh

    def clear(self) -> None:
        self._sets.clear()


def load_sets(s: Session, hashes: Iterable[str]) -> dict[str, list[Beneficiary]]:
    """Stored beneficiary sets by hash (those not stored are absent)."""
    rows = s.execute(
        select(BeneficiarySetRow.hash, BeneficiarySetRow.body).where(
            BeneficiarySetRow.hash.in_(list(hashes))
        )
    )
    return {h: from_body(json.loads(body)) for h, body in rows}


def divide_open_pools(s: Session, *, missing_ok: bool = False) -> list[tuple[int, Payout]]:
    """The pools of the receipts not in an epoch yet, summed per beneficiary set and role
    and divided over each set (``pricing.divide_pools``): ``(model id, payout)`` pairs. A
    set that is not stored raises, unless ``missing_ok`` (its pools are then left out)."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    models: dict[str, int] = {}
    for set_hash, role, model_id, amount in s.execute(
        select(PoolRow.set_hash, PoolRow.role, PoolRow.model_id, PoolRow.amount)
        .join(ReceiptRow, ReceiptRow.seq == PoolRow.receipt_seq)
        .where(ReceiptRow.epoch.is_(None))
    ):
        sums[(set_hash, role)] += amount
        models[set_hash] = model_id
    if not sums:
        return []
    sets = load_sets(s, set(models))
    if missing_ok:
        sums = {k: v for k, v in sums.items() if k[0] in sets}
    return [(models[h], p) for h, p in divide_pools(sums, sets)]
