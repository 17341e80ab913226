"""``NearDupIndex``: one datanet's persistent MinHash LSH index (see the package docstring)."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openledger.datanets.dedup.commit import (
    MAX_SEGMENT,
    Part,
    check_generation,
    dead_after,
    merge_plan,
    new_parts,
    write_commit,
    writer_lock,
)
from openledger.datanets.dedup.lsh import (
    DEFAULT_BANDS,
    DEFAULT_ROWS,
    DEFAULT_THRESHOLD,
    Banding,
    check_params,
)
from openledger.datanets.dedup.minhash import MinHasher
from openledger.datanets.dedup.segments import (
    META,
    Raced,
    Segment,
    SegmentFormat,
    cleanup,
    corrupt,
    load_state,
    read_meta,
    verify_files,
    write_meta,
)
from openledger.errors import StoreError, ValidationError
from openledger.fsutil import fsync_dir


class NearDupIndex:
    """A persistent MinHash LSH index of one datanet's records (see the package docstring).

    Keys are int64 record ids, unique while present. ``add`` and ``remove`` are staged in
    memory; ``commit`` makes them durable and visible to queries; ``rollback`` drops them.
    Queries see committed entries only.
    """

    def __init__(
        self, path: Path, hasher: MinHasher, bands: int, rows: int, *, _meta: dict | None
    ) -> None:
        self.path = Path(path)
        self.hasher = hasher
        self.bands = bands
        self.rows = rows
        self._lock = threading.RLock()
        self._banding = Banding(hasher.seed, bands, rows)
        self._format = SegmentFormat(hasher.num_perm, bands, rows)
        self._max_segment = min(MAX_SEGMENT, 1 << self._banding.pos_bits)
        self._segments: list[Segment] = []
        self._generation = 0
        self._next_id = 1
        self._tomb: dict | None = None
        self._staged_keys: list[np.ndarray] = []
        self._staged_sigs: list[np.ndarray] = []
        self._staged_removals: list[np.ndarray] = []
        if _meta is not None:
            self._load(_meta)

    # ----------------------------------------------------------------- open / create

    @classmethod
    def open(
        cls,
        path: Path,
        hasher: MinHasher | None = None,
        bands: int = DEFAULT_BANDS,
        rows: int = DEFAULT_ROWS,
        *,
        verify: bool = False,
    ) -> NearDupIndex:
        """Open the index in ``path``, creating an empty one if the directory has none.

        ``hasher``, ``bands`` and ``rows`` must be those the index was built with, else
        ``StoreError`` (rebuild it). ``verify`` also checks every file's checksum and order.
        """
        hasher = hasher or MinHasher()
        check_params(hasher.num_perm, bands, rows)
        path = Path(path)
        meta_path = path / META
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"The near-duplicate index path {path} is a file, not a directory.",
                field="path",
                value=str(path),
                fix="Move the file away; the index is rebuilt from the datanet's records.",
            )
        for _attempt in range(3):
            try:
                if not meta_path.exists():
                    stray = [p.name for p in path.iterdir()] if path.exists() else []
                    if any(name.startswith(("seg-", "tomb-")) for name in stray):
                        raise corrupt(path, f"{META} is missing but index files are present")
                    return cls.create(path, hasher, bands, rows)
                meta = read_meta(path)
                index = cls(path, hasher, bands, rows, _meta=meta)
                if verify:
                    index.verify()
                return index
            except Raced:
                continue  # a writer replaced files between reading meta and opening them
        raise corrupt(path, "files listed in meta.json keep disappearing")

    @classmethod
    def create(
        cls,
        path: Path,
        hasher: MinHasher | None = None,
        bands: int = DEFAULT_BANDS,
        rows: int = DEFAULT_ROWS,
    ) -> NearDupIndex:
        """An empty index in ``path``, replacing whatever index (even a corrupt one) is there."""
        hasher = hasher or MinHasher()
        check_params(hasher.num_perm, bands, rows)
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the near-duplicate index directory {path}: {exc}.",
                field="path",
                value=str(path),
                fix="Check the node home's permissions and free space.",
            ) from exc
        index = cls(path, hasher, bands, rows, _meta=None)
        with index._lock, writer_lock(index.path):
            generation = 0
            with contextlib.suppress(StoreError, OSError):
                generation = int(read_meta(path).get("generation", 0))
            index._generation = generation
            index._write_meta([], None, 1)
            fsync_dir(path)
            index._cleanup()
        return index

    def _params(self) -> dict[str, Any]:
        return {**self.hasher.params(), "bands": self.bands, "rows": self.rows}

    def _load(self, meta: dict) -> None:
        """Replace the in-memory committed state by the one ``meta`` describes."""
        segments, generation, next_id, tomb = load_state(
            self.path, meta, self._params(), self._format
        )
        self._segments = segments
        self._generation = generation
        self._next_id = next_id
        self._tomb = tomb

    def verify(self) -> None:
        """Check every file's checksum and every array's order; ``StoreError`` if corrupt."""
        with self._lock:
            verify_files(self.path, self._segments, self._tomb)

    # ----------------------------------------------------------------- reading

    def __len__(self) -> int:
        return sum(s.alive for s in self._segments)

    def __repr__(self) -> str:
        return (
            f"NearDupIndex({str(self.path)!r}, entries={len(self)}, "
            f"segments={len(self._segments)}, {self._params()})"
        )

    def keys(self) -> np.ndarray:
        """The committed, not removed keys (int64, ascending)."""
        segments = self._segments
        if not segments:
            return np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate([s.keys[~s.dead] for s in segments]))

    def bytes_on_disk(self) -> int:
        """Bytes of the committed index's files (meta, segments, tombstones)."""
        total = 0
        for name in self._files():
            with contextlib.suppress(FileNotFoundError):
                total += (self.path / name).stat().st_size
        return total

    @property
    def staged(self) -> int:
        """Entries added and not yet committed."""
        return sum(k.size for k in self._staged_keys)

    def band_hashes(self, sigs: np.ndarray) -> np.ndarray:
        """LSH band hashes (uint32, shape (n, bands)) of signatures (n, num_perm)."""
        return self._banding.hashes(self._as_sigs(sigs))

    def query(
        self, sig: np.ndarray, threshold: float = DEFAULT_THRESHOLD
    ) -> list[tuple[int, float]]:
        """Committed entries whose estimate with ``sig`` is >= ``threshold``, best first."""
        sig = np.asarray(sig)
        if sig.ndim != 1:
            raise ValueError(f"query takes one signature (1-D), got shape {sig.shape}")
        _rows, keys, matches = self._matches(sig[None, :], threshold)
        order = np.lexsort((keys, -matches))
        p = self.hasher.num_perm
        return [(int(keys[i]), float(matches[i]) / p) for i in order]

    def query_many(
        self, sigs: np.ndarray, threshold: float = DEFAULT_THRESHOLD
    ) -> list[tuple[int, float] | None]:
        """For each signature row, its best committed match (key, estimate) or None."""
        sigs = self._as_sigs(sigs)
        result: list[tuple[int, float] | None] = [None] * sigs.shape[0]
        rows, keys, matches = self._matches(sigs, threshold)
        if rows.size:
            order = np.lexsort((keys, -matches, rows))
            rows, keys, matches = rows[order], keys[order], matches[order]
            first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            p = self.hasher.num_perm
            for i in first:
                result[int(rows[i])] = (int(keys[i]), float(matches[i]) / p)
        return result

    def candidates(self, sigs: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
        """Every (query row, key, estimate) pair with an estimate >= ``threshold``, by row,
        best first (for checks that confirm candidates by another measure)."""
        rows, keys, matches = self._matches(self._as_sigs(sigs), threshold)
        order = np.lexsort((keys, -matches, rows))
        p = self.hasher.num_perm
        return [(int(rows[i]), int(keys[i]), float(matches[i]) / p) for i in order]

    def _as_sigs(self, sigs: np.ndarray) -> np.ndarray:
        sigs = np.asarray(sigs)
        if sigs.ndim != 2 or sigs.shape[1] != self.hasher.num_perm:
            raise ValueError(
                f"signatures must have shape (n, {self.hasher.num_perm}), got {sigs.shape}"
            )
        if sigs.dtype != np.uint32:
            if not np.issubdtype(sigs.dtype, np.integer):
                raise ValueError(f"signatures must be uint32, got {sigs.dtype}")
            sigs = sigs.astype(np.uint32)
        return np.ascontiguousarray(sigs)

    def _matches(
        self, sigs: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query row, key, matching permutations) pairs at or above ``threshold``."""
        if isinstance(threshold, bool) or not 0.0 < float(threshold) <= 1.0:
            raise ValidationError(
                f"The near-duplicate threshold must be in (0, 1], got {threshold!r}.",
                field="threshold",
                value=threshold,
                fix="Use a Jaccard similarity above 0 and at most 1, e.g. 0.8.",
            )
        sigs = self._as_sigs(sigs)
        need = max(1, math.ceil(float(threshold) * self.hasher.num_perm - 1e-9))
        segments = self._segments  # a consistent snapshot even if a commit swaps the list
        return self._banding.matches(segments, sigs, need)

    # ----------------------------------------------------------------- staging

    def _entries(
        self, keys: Sequence[int] | np.ndarray, sigs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``keys`` as int64 and ``sigs`` checked against the hasher, one per key."""
        keys = np.asarray(keys)
        if keys.ndim != 1 or (keys.size and not np.issubdtype(keys.dtype, np.integer)):
            raise ValueError(f"keys must be a 1-D integer array, got {keys.dtype} {keys.shape}")
        keys = keys.astype(np.int64)
        sigs = self._as_sigs(sigs)
        if sigs.shape[0] != keys.size:
            raise ValueError(f"{keys.size} keys but {sigs.shape[0]} signatures")
        return keys, sigs

    def add(self, keys: Sequence[int] | np.ndarray, sigs: np.ndarray) -> None:
        """Stage entries; they become visible to queries at ``commit``."""
        keys, sigs = self._entries(keys, sigs)
        if keys.size == 0:
            return
        with self._lock:
            if np.unique(keys).size != keys.size:
                raise ValueError("keys must be unique")
            removing = (
                np.concatenate(self._staged_removals)
                if self._staged_removals
                else np.empty(0, dtype=np.int64)
            )
            present = self._alive_mask(keys) & ~np.isin(keys, removing)
            if self._staged_keys:
                present |= np.isin(keys, np.concatenate(self._staged_keys))
            if present.any():
                raise ValueError(f"keys already in the index: {keys[present][:10].tolist()}")
            self._staged_keys.append(keys.copy())
            self._staged_sigs.append(sigs.copy())

    def remove(self, keys: Sequence[int] | np.ndarray) -> None:
        """Stage the removal of entries (committed or staged); unknown keys are ignored.

        Committed entries stop matching at ``commit``; staged ones are dropped at once.
        """
        keys = np.asarray(keys, dtype=np.int64).ravel()
        if keys.size == 0:
            return
        with self._lock:
            for i, staged in enumerate(self._staged_keys):
                drop = np.isin(staged, keys)
                if drop.any():
                    self._staged_keys[i] = staged[~drop]
                    self._staged_sigs[i] = self._staged_sigs[i][~drop]
            self._staged_removals.append(keys[self._alive_mask(keys)])

    def rollback(self) -> None:
        """Drop everything staged since the last commit."""
        with self._lock:
            self._staged_keys.clear()
            self._staged_sigs.clear()
            self._staged_removals.clear()

    def _alive_mask(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(keys.size, dtype=bool)
        for seg in self._segments:
            if seg.n == 0:
                continue
            i = np.searchsorted(seg.keys, keys)
            at = np.minimum(i, seg.n - 1)
            hit = (seg.keys[at] == keys) & (i < seg.n)
            hit[hit] &= ~seg.dead[at[hit]]
            found |= hit
        return found

    # ----------------------------------------------------------------- writing

    def commit(self) -> None:
        """Make staged additions and removals durable and visible, atomically."""
        with self._lock, writer_lock(self.path):
            check_generation(self.path, self._generation)
            if self.staged == 0 and not any(r.size for r in self._staged_removals):
                self.rollback()
                return
            segments = list(self._segments)
            dead = dead_after(segments, self._staged_removals)
            plan: list[Part] = list(segments)
            if self.staged:
                keys = np.concatenate(self._staged_keys)
                sigs = np.concatenate(self._staged_sigs)
                plan += new_parts(keys, sigs, self._max_segment)
            plan = merge_plan(plan, dead, self._max_segment)
            self._write_commit(plan, dead)

    def rebuild(self, keys: Sequence[int] | np.ndarray, sigs: np.ndarray) -> None:
        """Replace the whole index with these entries (one commit); drops anything staged."""
        keys, sigs = self._entries(keys, sigs)
        if np.unique(keys).size != keys.size:
            raise ValueError("keys must be unique")
        with self._lock, writer_lock(self.path):
            with contextlib.suppress(StoreError, OSError):
                self._generation = max(
                    self._generation, int(read_meta(self.path).get("generation", 0))
                )
            self._write_commit(new_parts(keys, sigs, self._max_segment), {})

    def _write_commit(self, plan: list[Part], dead: dict[int, np.ndarray]) -> None:
        """Write new segments, tombstones and meta (the commit point); then swap state."""
        write_commit(
            self.path,
            plan,
            dead,
            fmt=self._format,
            banding=self._banding,
            generation=self._generation,
            next_id=self._next_id,
            write_meta=self._write_meta,
        )
        # committed: from here on the new state is what is on disk
        fsync_dir(self.path)
        self._staged_keys.clear()
        self._staged_sigs.clear()
        self._staged_removals.clear()
        try:
            self._load(read_meta(self.path))
        finally:
            self._cleanup()

    def _write_meta(self, segments: list[dict], tomb: dict | None, next_id: int) -> None:
        """Replace meta.json (temporary file, fsync, os.replace); the directory is not fsynced."""
        write_meta(self.path, self._params(), self._generation + 1, next_id, segments, tomb)
        self._generation += 1
        self._next_id = next_id

    def _files(self) -> list[str]:
        names = [META] + [s.file for s in self._segments]
        if self._tomb:
            names.append(str(self._tomb["file"]))
        return names

    def _cleanup(self) -> None:
        """Delete index files the committed meta does not name (old segments, temp files)."""
        cleanup(self.path, set(self._files()))
