"""One near-duplicate index per datanet, kept in step with the store.

The index files are a cache of the records table: when their entry count disagrees with
the live records (a crash between the database commit and the index commit), the index is
rebuilt from the stored records before it is used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from openledger.datanets.dedup import MinHasher, NearDupIndex
from openledger.datanets.queries import live_records
from openledger.datanets.records import Record
from openledger.errors import StoreError
from openledger.store.datanet_tables import RecordRow
from openledger.store.db import Database


def record_text(content_json: str) -> str:
    return Record.from_canonical(json.loads(content_json), source="", location="").content_text


class NearDupRegistry:
    def __init__(self, root: Path, db: Database, hasher: MinHasher | None = None) -> None:
        self.root = root
        self.db = db
        self.hasher = hasher or MinHasher()
        self._open: dict[int, NearDupIndex] = {}

    def signatures(self, records: list[Record]) -> np.ndarray:
        return self.hasher.signatures([r.content_text for r in records])

    def index_for(self, datanet_id: int) -> NearDupIndex:
        path = self.root / str(datanet_id) / "neardup"
        index = self._open.get(datanet_id)
        if index is None:
            try:
                index = NearDupIndex.open(path, hasher=self.hasher)
            except StoreError:
                index = None
        with self.db.session() as s:
            live = s.scalar(
                select(func.count())
                .select_from(RecordRow)
                .where(RecordRow.datanet_id == datanet_id, RecordRow.dedup_key.is_not(None))
            )
        if index is None or len(index) != live:
            index = self._rebuild(path, datanet_id, index)
        self._open[datanet_id] = index
        return index

    def _rebuild(self, path: Path, datanet_id: int, index: NearDupIndex | None) -> NearDupIndex:
        with self.db.session() as s:
            rows = live_records(s, datanet_id)
        if index is None:  # missing or corrupt: start from an empty index in place
            index = NearDupIndex.create(path, hasher=self.hasher)
        keys = np.array([rid for rid, _ in rows], dtype=np.int64)
        sigs = self.hasher.signatures([record_text(c) for _, c in rows])
        index.rebuild(keys, sigs.reshape(len(rows), self.hasher.num_perm))
        return index
