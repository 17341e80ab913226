"""LSH banding: band hashes of MinHash signatures, band entries and band lookups.

The first ``bands * rows`` values of a signature are cut into ``bands`` bands of ``rows``
values; each band is hashed to 32 bits by vector multiply-shift with constants derived
from the hasher's seed. A segment keeps one sorted uint64 array of band entries
``band << (64 - band_bits) | band_hash << pos_bits | position``; a query is a binary
search per segment for all its bands at once (``np.searchsorted``), and candidates from
any matching band are verified by their signature estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from openledger.datanets.dedup.minhash import derive_u64
from openledger.errors import ValidationError

if TYPE_CHECKING:
    from openledger.datanets.dedup.segments import Segment

# 25 bands of 5 rows: a pair at Jaccard 0.8 is a candidate with probability
# 1 - (1 - 0.8**5)**25 = 0.99995 (0.7: 0.990, 0.5: 0.55, 0.3: 0.059).
DEFAULT_BANDS = 25
DEFAULT_ROWS = 5
DEFAULT_THRESHOLD = 0.8

_QUERY_CHUNK = 4096


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair at ``jaccard`` shares at least one band: 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def check_params(num_perm: int, bands: int, rows: int) -> None:
    """``ValidationError`` unless ``bands`` and ``rows`` fit signatures of ``num_perm``."""
    for name, value in (("bands", bands), ("rows", rows)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
            raise ValidationError(
                f"LSH {name} must be an integer from 1 to 256, got {value!r}.",
                field=name,
                value=value,
                fix=f"Set {name} to an integer from 1 to 256.",
            )
    if bands * rows > num_perm:
        raise ValidationError(
            f"LSH bands x rows ({bands} x {rows}) exceeds num_perm ({num_perm}).",
            field="bands",
            value=bands,
            fix="Choose bands and rows with bands * rows <= num_perm.",
        )


class Banding:
    """Band hashes and band entries for ``bands`` bands of ``rows`` rows (seeded by ``seed``).

    Signatures passed in are already checked: uint32, contiguous, shape (n, num_perm).
    """

    def __init__(self, seed: int, bands: int, rows: int) -> None:
        self.bands = bands
        self.rows = rows
        self.band_bits = max(1, (bands - 1).bit_length())
        self.pos_bits = 32 - self.band_bits
        consts = derive_u64(seed, f"band-{bands}x{rows}", bands * rows + bands)
        self._band_c = consts[: bands * rows].reshape(bands, rows)
        self._band_d = consts[bands * rows :]

    def hashes(self, sigs: np.ndarray) -> np.ndarray:
        """LSH band hashes (uint32, shape (n, bands)) of signatures (n, num_perm)."""
        r = self.rows
        out = np.empty((sigs.shape[0], self.bands), dtype=np.uint32)
        wide = sigs[:, : self.bands * r].astype(np.uint64).reshape(sigs.shape[0], self.bands, r)
        acc = np.broadcast_to(self._band_d, (sigs.shape[0], self.bands)).copy()
        for j in range(r):
            acc += wide[:, :, j] * self._band_c[:, j]
        np.right_shift(acc, np.uint64(32), out=acc)
        out[:] = acc
        return out

    def needles(self, sigs: np.ndarray) -> np.ndarray:
        """Band entries of ``sigs`` with the position bits zero: uint64 (bands, n)."""
        bh = self.hashes(sigs).T.astype(np.uint64)  # (bands, n)
        band = np.arange(self.bands, dtype=np.uint64)[:, None] << np.uint64(64 - self.band_bits)
        return band | (bh << np.uint64(self.pos_bits))

    def entries(self, sigs: np.ndarray) -> np.ndarray:
        """The sorted band entries of a segment whose row i is ``sigs[i]``: uint64 (bands * n,)."""
        pos = np.arange(sigs.shape[0], dtype=np.uint64)[None, :]
        return np.sort((self.needles(sigs) | pos).ravel())

    def matches(
        self, segments: Sequence[Segment], sigs: np.ndarray, need: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query row, key, matching permutations) with at least ``need`` matching."""
        out_rows, out_keys, out_matches = [], [], []
        if not segments or sigs.shape[0] == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        for lo in range(0, sigs.shape[0], _QUERY_CHUNK):
            q = sigs[lo : lo + _QUERY_CHUNK]
            needles = self.needles(q)  # (bands, nq) uint64, pos bits zero
            flat = needles.ravel()
            qrow = np.tile(np.arange(q.shape[0], dtype=np.int64), self.bands)
            for seg in segments:
                r, pos = self._probe(seg, flat, qrow)
                if r.size == 0:
                    continue
                code = np.unique(r * seg.n + pos)
                r, pos = code // seg.n, code % seg.n
                live = ~seg.dead[pos]
                r, pos = r[live], pos[live]
                if r.size == 0:
                    continue
                m = np.count_nonzero(seg.sigs[pos] == q[r], axis=1)
                ok = m >= need
                out_rows.append(r[ok] + lo)
                out_keys.append(np.asarray(seg.keys[pos[ok]], dtype=np.int64))
                out_matches.append(m[ok].astype(np.int64))
        if not out_rows:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(out_rows), np.concatenate(out_keys), np.concatenate(out_matches)

    def _probe(
        self, seg: Segment, needles: np.ndarray, qrow: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query row, position) for every band entry of ``seg`` equal to a needle."""
        arr = seg.bands
        if arr.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        pos_mask = np.uint64((1 << self.pos_bits) - 1)
        lo = np.searchsorted(arr, needles, side="left")
        at = np.minimum(lo, arr.size - 1)
        hit = (arr[at] & ~pos_mask) == needles
        hit &= lo < arr.size
        if not hit.any():
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        lo = lo[hit]
        hi = np.searchsorted(arr, needles[hit] | pos_mask, side="right")
        counts = hi - lo
        rows = np.repeat(qrow[hit], counts)
        first = np.cumsum(counts) - counts
        idx = np.repeat(lo - first, counts) + np.arange(int(counts.sum()))
        pos = (arr[idx] & pos_mask).astype(np.int64)
        return rows, pos
