"""Near-duplicate detection for Datanets: MinHash signatures and a persistent LSH index.

A contribution is rejected when one of its records is a near duplicate (estimated Jaccard
similarity of shingle sets >= 0.8 by default) of a record already committed to the datanet.
Exact duplicates are the database's job (a unique sha256 per datanet); this module only
finds near duplicates. Records of one contribution are never compared with each other: a
query sees committed entries only.

Shingles
    Character 5-grams of the normalised text: Unicode NFKC, case-folded, every run of
    characters that are not letters or digits (punctuation, underscores, whitespace)
    replaced by one space. Chosen by measurement on real English technical prose: 838
    paragraphs of 400-2,000 characters (about 100 words) and 2,660 sentences of 80-300
    characters from the docstrings of the Python standard library, numpy, SQLAlchemy,
    hypothesis and others (one broad topic), comparing word 1..5-grams with character
    4..9-grams by exact Jaccard similarity:

    ======================================  =======  =======  =======
    share of pairs with Jaccard >= 0.8      word 2   word 3   char 5
    ======================================  =======  =======  =======
    whitespace and case changed             1.00     1.00     1.00
    3 words replaced                        0.98     0.66     0.98
    5% of the words replaced                0.97     0.20     0.94
    5 words inserted or deleted             0.91     0.40     0.97
    10 typos (characters replaced)          0.10     0.02     0.75
    sentence, 1 word replaced               0.61     0.31     0.72
    sentence, 2 typos                       0.16     0.06     0.76
    unrelated paragraphs, p99 Jaccard       0.054    0.018    0.145
    unrelated sentences, p99 Jaccard        0.047    0.000    0.090
    ======================================  =======  =======  =======

    Character 5-grams find word edits about as well as word bigrams, are far more robust
    to typos and in short records, need no word segmentation (CJK and Thai text works as
    is), and keep unrelated paragraphs of one topic well below 0.3. Character 4-grams
    (p99 0.21) and bags of words (p99 0.26) bring unrelated paragraphs too close; longer
    k-grams and word trigrams miss edited paragraphs.

Hashing (deterministic across processes, machines and numpy versions; no ``hash()``)
    Every constant is derived from ``seed`` with xxh64. A k-gram of code points is hashed to
    32 bits by vector multiply-shift, ``(sum c_j * cp_j + d) mod 2**64 >> 32``; each of the
    ``num_perm`` permutations is the strongly universal multiply-add-shift
    ``(a_i * x + b_i) mod 2**64 >> 32``, all computed vectorised in numpy; the signature is
    the per-permutation minimum (uint32). A text shorter than k is one shingle padded with
    NUL, so an empty text has a signature too (and matches only empty texts).

Index
    ``NearDupIndex`` keeps one datanet's signatures in a directory of immutable segment files
    plus ``meta.json``. A segment holds its keys (int64, sorted), the signature matrix
    (uint32, n x num_perm) and one sorted uint64 array of band entries
    ``band << (64 - band_bits) | band_hash << pos_bits | position``; a query is a binary
    search per segment for all its bands at once (``np.searchsorted``), candidates from any
    matching band are verified by their signature estimate. Commits write a new segment and
    merge the newest segments while the older one is not larger than the newer one (so
    there are about log2(n) segments and each entry is rewritten about log2(n) times).
    Removals are tombstones (segment, position) until their segment is merged.

    Durability: every file is written to a temporary name, fsynced and moved into place with
    ``os.replace``; ``meta.json`` is replaced last and is the commit point; old files are
    deleted only after it. A crash at any point leaves the previous commit readable. One
    writer at a time: commits take an ``flock`` on ``lock`` and fail with ``StoreError`` if
    another process committed since this one opened the index.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import tempfile
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from openledger.errors import StoreError, ValidationError

try:  # pragma: no cover - always present on Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_NUM_PERM",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DEFAULT_SHINGLE_SIZE",
    "DEFAULT_THRESHOLD",
    "MinHasher",
    "NearDupIndex",
    "candidate_probability",
    "estimate",
]

DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 5
DEFAULT_SEED = 1
# 25 bands of 5 rows: a pair at Jaccard 0.8 is a candidate with probability
# 1 - (1 - 0.8**5)**25 = 0.99995 (0.7: 0.990, 0.5: 0.55, 0.3: 0.059).
DEFAULT_BANDS = 25
DEFAULT_ROWS = 5
DEFAULT_THRESHOLD = 0.8

_MASK64 = (1 << 64) - 1
_NORM_RE = re.compile(r"[\W_]+")
_ASCII_TABLE = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_PAD = "\0"
_CHUNK = 8192  # shingles per permutation block: (num_perm, _CHUNK) uint64 = 8 MiB at 128

FORMAT = "openledger-neardup-index"
FORMAT_VERSION = 1
META = "meta.json"
LOCK = "lock"
_SEG_MAGIC = b"OLNDSEG1"
_SEG_HEADER = struct.Struct("<8sIIIIQ32x")  # magic, version, num_perm, bands, rows, n
_SEG_HEADER_SIZE = 64
_MAX_SEGMENT = 1 << 21  # entries; merging stops at this size (about 1.5 GB at 128 perms)
_QUERY_CHUNK = 4096


def _u64(seed: int, label: str, count: int) -> np.ndarray:
    """``count`` 64-bit constants derived from ``seed`` and ``label`` (stable everywhere)."""
    return np.array(
        [xxhash.xxh64_intdigest(f"{label}:{i}".encode(), seed=seed) for i in range(count)],
        dtype=np.uint64,
    )


def normalise(text: str) -> str:
    """The text shingles are taken from: NFKC, case-folded, non-alphanumerics as one space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():  # the same result as the regex, 4x faster
        return b" ".join(text.encode().translate(_ASCII_TABLE).split()).decode()
    return _NORM_RE.sub(" ", text).strip()


def estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of permutations whose minima agree."""
    a = np.asarray(sig_a)
    b = np.asarray(sig_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"signatures must be two 1-D arrays of one length, got {a.shape}, {b.shape}"
        )
    return float(np.count_nonzero(a == b)) / a.size


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair at ``jaccard`` shares at least one band: 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


@dataclass(frozen=True, slots=True)
class MinHasher:
    """MinHash signatures of character k-gram sets (see the module docstring)."""

    num_perm: int = DEFAULT_NUM_PERM
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    seed: int = DEFAULT_SEED
    _perm_a: np.ndarray = field(init=False, repr=False, compare=False)
    _perm_b: np.ndarray = field(init=False, repr=False, compare=False)
    _gram_c: np.ndarray = field(init=False, repr=False, compare=False)
    _gram_d: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, value, lo, hi in (
            ("num_perm", self.num_perm, 8, 4096),
            ("shingle_size", self.shingle_size, 1, 64),
            ("seed", self.seed, 0, _MASK64),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValidationError(
                    f"MinHash {name} must be an integer from {lo} to {hi}, got {value!r}.",
                    field=name,
                    value=value,
                    fix=f"Set {name} to an integer from {lo} to {hi}.",
                )
        object.__setattr__(self, "_perm_a", _u64(self.seed, "perm-a", self.num_perm)[:, None])
        object.__setattr__(self, "_perm_b", _u64(self.seed, "perm-b", self.num_perm)[:, None])
        object.__setattr__(self, "_gram_c", _u64(self.seed, "gram-c", self.shingle_size))
        object.__setattr__(self, "_gram_d", _u64(self.seed, "gram-d", 1))

    def params(self) -> dict[str, int]:
        return {"num_perm": self.num_perm, "shingle_size": self.shingle_size, "seed": self.seed}

    estimate = staticmethod(estimate)

    def signature(self, text: str) -> np.ndarray:
        """The signature of one text: uint32 array of length ``num_perm``."""
        return self.signatures([text])[0]

    def signatures(self, texts: Iterable[str]) -> np.ndarray:
        """Signatures of many texts: uint32 array of shape (len(texts), num_perm)."""
        k = self.shingle_size
        norm = []
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be str, got {type(text).__name__}")
            s = normalise(text)
            norm.append(s if len(s) >= k else s + _PAD * (k - len(s)))
        n = len(norm)
        if n == 0:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        lengths = np.fromiter((len(s) for s in norm), dtype=np.int64, count=n)
        cps = np.frombuffer("".join(norm).encode("utf-32-le"), dtype="<u4").astype(np.uint64)
        # k-gram hashes at every position of the concatenation, then only those inside a text
        m = cps.size - k + 1
        h = np.full(m, self._gram_d[0], dtype=np.uint64)
        for j in range(k):
            h += cps[j : j + m] * self._gram_c[j]
        h >>= np.uint64(32)
        counts = lengths - k + 1
        offsets = np.cumsum(lengths) - lengths
        starts = np.cumsum(counts) - counts
        idx = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(offsets - starts, counts)
        return self._minhash(h[idx], starts)

    def signatures_of_sets(self, sets: Iterable[np.ndarray | Sequence[int]]) -> np.ndarray:
        """Signatures of sets already hashed to 32-bit integers (one row per set).

        The building block of ``signatures``; useful to measure the LSH on sets of known
        Jaccard similarity. An empty set gets the signature of {0}.
        """
        arrays = [np.asarray(a, dtype=np.uint64).ravel() for a in sets]
        if not arrays:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        arrays = [a if a.size else np.zeros(1, dtype=np.uint64) for a in arrays]
        counts = np.array([a.size for a in arrays], dtype=np.int64)
        x = np.concatenate(arrays) & np.uint64(0xFFFFFFFF)
        return self._minhash(x, np.cumsum(counts) - counts)

    def _minhash(self, x: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Per-permutation minima of the 32-bit hashes ``x``; set i is x[starts[i]:starts[i+1]]."""
        n, total = starts.size, x.size
        out = np.full((self.num_perm, n), _MASK64, dtype=np.uint64)
        buf = np.empty((self.num_perm, min(_CHUNK, total)), dtype=np.uint64)
        for lo in range(0, total, _CHUNK):
            hi = min(lo + _CHUNK, total)
            v = buf[:, : hi - lo]
            np.multiply(self._perm_a, x[lo:hi][None, :], out=v)
            v += self._perm_b  # (a * x + b) mod 2**64; the >> 32 commutes with min
            t0 = int(np.searchsorted(starts, lo, side="right")) - 1
            t1 = int(np.searchsorted(starts, hi - 1, side="right"))
            local = np.maximum(starts[t0:t1], lo) - lo
            mins = np.minimum.reduceat(v, local, axis=1)
            np.minimum(out[:, t0:t1], mins, out=out[:, t0:t1])
        out >>= np.uint64(32)
        return np.ascontiguousarray(out.T.astype(np.uint32))


# --------------------------------------------------------------------------- index


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, chunks: Iterable[bytes | memoryview]) -> tuple[int, str]:
    """Write ``chunks`` to ``path`` via a fsynced temporary file and ``os.replace``.

    Returns (size, xxh3_64 hex digest). The directory is not fsynced here.
    """
    digest = xxhash.xxh3_64()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return size, digest.hexdigest()


def _file_digest(path: Path) -> str:
    digest = xxhash.xxh3_64()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Segment:
    id: int
    file: str
    keys: np.ndarray  # int64 (n,), sorted ascending
    sigs: np.ndarray  # uint32 (n, num_perm), row i belongs to keys[i]
    bands: np.ndarray  # uint64 (bands * n,), sorted
    dead: np.ndarray  # bool (n,): removed by a tombstone
    size: int
    digest: str
    alive: int = 0  # entries not dead, set once the tombstones are applied

    @property
    def n(self) -> int:
        return int(self.keys.size)


class NearDupIndex:
    """A persistent MinHash LSH index of one datanet's records (see the module docstring).

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
        self._band_bits = max(1, (bands - 1).bit_length())
        self._pos_bits = 32 - self._band_bits
        self._max_segment = min(_MAX_SEGMENT, 1 << self._pos_bits)
        consts = _u64(hasher.seed, f"band-{bands}x{rows}", bands * rows + bands)
        self._band_c = consts[: bands * rows].reshape(bands, rows)
        self._band_d = consts[bands * rows :]
        self._segments: list[_Segment] = []
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
        cls._check_params(hasher, bands, rows)
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
                        raise _corrupt(path, f"{META} is missing but index files are present")
                    return cls.create(path, hasher, bands, rows)
                meta = _read_meta(path)
                index = cls(path, hasher, bands, rows, _meta=meta)
                if verify:
                    index.verify()
                return index
            except _Raced:
                continue  # a writer replaced files between reading meta and opening them
        raise _corrupt(path, "files listed in meta.json keep disappearing")

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
        cls._check_params(hasher, bands, rows)
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
        with index._lock, index._writer_lock():
            generation = 0
            with contextlib.suppress(StoreError, OSError):
                generation = int(_read_meta(path).get("generation", 0))
            index._generation = generation
            index._write_meta([], None, 1)
            _fsync_dir(path)
            index._cleanup()
        return index

    @staticmethod
    def _check_params(hasher: MinHasher, bands: int, rows: int) -> None:
        for name, value in (("bands", bands), ("rows", rows)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
                raise ValidationError(
                    f"LSH {name} must be an integer from 1 to 256, got {value!r}.",
                    field=name,
                    value=value,
                    fix=f"Set {name} to an integer from 1 to 256.",
                )
        if bands * rows > hasher.num_perm:
            raise ValidationError(
                f"LSH bands x rows ({bands} x {rows}) exceeds num_perm ({hasher.num_perm}).",
                field="bands",
                value=bands,
                fix="Choose bands and rows with bands * rows <= num_perm.",
            )

    def _params(self) -> dict[str, Any]:
        return {**self.hasher.params(), "bands": self.bands, "rows": self.rows}

    def _load(self, meta: dict) -> None:
        """Replace the in-memory committed state by the one ``meta`` describes."""
        path = self.path
        try:
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise _corrupt(
                    path,
                    f"unknown format {meta.get('format')!r} version {meta.get('version')!r}",
                )
            stored = meta["params"]
            if stored != self._params():
                built = ", ".join(f"{k}={v}" for k, v in stored.items())
                asked = ", ".join(f"{k}={v}" for k, v in self._params().items())
                raise StoreError(
                    f"The near-duplicate index at {path} was built with {built} "
                    f"but was opened with {asked}.",
                    field="path",
                    value=str(path),
                    fix="Rebuild the index from the datanet's records with the new parameters "
                    "(NearDupIndex.create then rebuild), or open it with the parameters it "
                    "was built with.",
                )
            generation = int(meta["generation"])
            next_id = int(meta["next_segment_id"])
            segments = [self._open_segment(s, generation) for s in meta["segments"]]
            tomb = meta.get("tombstones") or None
            if tomb:
                codes = self._read_tombstones(tomb, generation)
                by_id = {s.id: s for s in segments}
                seg_ids = codes >> np.int64(32)
                for seg_id in np.unique(seg_ids):
                    seg = by_id.get(int(seg_id))
                    sel = codes[seg_ids == seg_id] & np.int64(0xFFFFFFFF)
                    if seg is None or int(sel.max()) >= seg.n:
                        raise _corrupt(path, "tombstones name entries that do not exist")
                    seg.dead[sel] = True
            for seg in segments:
                seg.alive = seg.n - int(np.count_nonzero(seg.dead))
            alive = sum(s.alive for s in segments)
            if alive != int(meta["count"]):
                raise _corrupt(
                    path, f"meta.json counts {meta['count']} entries, files hold {alive}"
                )
        except (StoreError, _Raced):
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _corrupt(path, f"meta.json is malformed ({exc!r})") from exc
        self._segments = segments
        self._generation = generation
        self._next_id = next_id
        self._tomb = dict(tomb) if tomb else None

    def _seg_layout(self, n: int) -> tuple[int, int, int, int]:
        """Offsets of keys, sigs, bands and the total size of a segment of ``n`` entries."""
        keys_at = _SEG_HEADER_SIZE
        sigs_at = keys_at + 8 * n
        bands_at = sigs_at + 4 * n * self.hasher.num_perm
        bands_at += -bands_at % 8
        return keys_at, sigs_at, bands_at, bands_at + 8 * n * self.bands

    def _open_segment(self, entry: dict, generation: int) -> _Segment:
        file = str(entry["file"])
        n = int(entry["count"])
        if not re.fullmatch(r"seg-\d+\.bin", file):
            raise _corrupt(self.path, f"bad segment name {file!r}")
        fpath = self.path / file
        keys_at, sigs_at, bands_at, total = self._seg_layout(n)
        try:
            size = fpath.stat().st_size
        except FileNotFoundError as exc:
            if _meta_changed(self.path, generation):
                raise _Raced() from exc
            raise _corrupt(self.path, f"segment {file} is missing") from exc
        if size != total or size != int(entry["bytes"]):
            raise _corrupt(self.path, f"segment {file} has {size} bytes, expected {total}")
        try:
            data = np.memmap(fpath, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise _corrupt(self.path, f"segment {file} cannot be mapped ({exc})") from exc
        magic, version, num_perm, bands, rows, count = _SEG_HEADER.unpack(
            bytes(data[:_SEG_HEADER_SIZE])
        )
        if (magic, version, num_perm, bands, rows, count) != (
            _SEG_MAGIC,
            FORMAT_VERSION,
            self.hasher.num_perm,
            self.bands,
            self.rows,
            n,
        ):
            raise _corrupt(self.path, f"segment {file} has a wrong header")
        keys = data[keys_at:sigs_at].view("<i8")
        sigs = data[sigs_at : sigs_at + 4 * n * self.hasher.num_perm].view("<u4")
        return _Segment(
            id=int(entry["id"]),
            file=file,
            keys=keys,
            sigs=sigs.reshape(n, self.hasher.num_perm),
            bands=data[bands_at:total].view("<u8"),
            dead=np.zeros(n, dtype=bool),
            size=size,
            digest=str(entry["xxh3_64"]),
        )

    def _read_tombstones(self, entry: dict, generation: int) -> np.ndarray:
        file = str(entry["file"])
        fpath = self.path / file
        if not re.fullmatch(r"tomb-\d+\.npy", file):
            raise _corrupt(self.path, f"bad tombstone file name {file!r}")
        try:
            if fpath.stat().st_size != int(entry["bytes"]):
                raise _corrupt(self.path, f"tombstone file {file} has the wrong size")
            codes = np.load(fpath, allow_pickle=False)
        except FileNotFoundError as exc:
            if _meta_changed(self.path, generation):
                raise _Raced() from exc
            raise _corrupt(self.path, f"tombstone file {file} is missing") from exc
        except (OSError, ValueError, EOFError) as exc:
            raise _corrupt(self.path, f"tombstone file {file} is unreadable ({exc})") from exc
        if codes.dtype != np.int64 or codes.ndim != 1 or codes.size != int(entry["count"]):
            raise _corrupt(self.path, f"tombstone file {file} has the wrong shape")
        return codes

    def verify(self) -> None:
        """Check every file's checksum and every array's order; ``StoreError`` if corrupt."""
        with self._lock:
            for seg in self._segments:
                if _file_digest(self.path / seg.file) != seg.digest:
                    raise _corrupt(self.path, f"segment {seg.file} fails its checksum")
                keys, bands = seg.keys, seg.bands
                if np.any(keys[1:] <= keys[:-1]) or np.any(bands[1:] < bands[:-1]):
                    raise _corrupt(self.path, f"segment {seg.file} is not sorted")
            if self._tomb and _file_digest(self.path / self._tomb["file"]) != self._tomb.get(
                "xxh3_64"
            ):
                raise _corrupt(self.path, f"tombstone file {self._tomb['file']} fails its checksum")

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
        sigs = self._as_sigs(sigs)
        r = self.rows
        out = np.empty((sigs.shape[0], self.bands), dtype=np.uint32)
        wide = sigs[:, : self.bands * r].astype(np.uint64).reshape(sigs.shape[0], self.bands, r)
        acc = np.broadcast_to(self._band_d, (sigs.shape[0], self.bands)).copy()
        for j in range(r):
            acc += wide[:, :, j] * self._band_c[:, j]
        np.right_shift(acc, np.uint64(32), out=acc)
        out[:] = acc
        return out

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
        p = self.hasher.num_perm
        need = max(1, math.ceil(float(threshold) * p - 1e-9))
        segments = self._segments  # a consistent snapshot even if a commit swaps the list
        out_rows, out_keys, out_matches = [], [], []
        if not segments or sigs.shape[0] == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        for lo in range(0, sigs.shape[0], _QUERY_CHUNK):
            q = sigs[lo : lo + _QUERY_CHUNK]
            needles = self._needles(q)  # (bands, nq) uint64, pos bits zero
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

    def _needles(self, sigs: np.ndarray) -> np.ndarray:
        bh = self.band_hashes(sigs).T.astype(np.uint64)  # (bands, n)
        band = np.arange(self.bands, dtype=np.uint64)[:, None] << np.uint64(64 - self._band_bits)
        return band | (bh << np.uint64(self._pos_bits))

    def _probe(
        self, seg: _Segment, needles: np.ndarray, qrow: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(query row, position) for every band entry of ``seg`` equal to a needle."""
        arr = seg.bands
        if arr.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        pos_mask = np.uint64((1 << self._pos_bits) - 1)
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

    # ----------------------------------------------------------------- staging

    def add(self, keys: Sequence[int] | np.ndarray, sigs: np.ndarray) -> None:
        """Stage entries; they become visible to queries at ``commit``."""
        keys = np.asarray(keys)
        if keys.ndim != 1 or (keys.size and not np.issubdtype(keys.dtype, np.integer)):
            raise ValueError(f"keys must be a 1-D integer array, got {keys.dtype} {keys.shape}")
        keys = keys.astype(np.int64)
        sigs = self._as_sigs(sigs)
        if sigs.shape[0] != keys.size:
            raise ValueError(f"{keys.size} keys but {sigs.shape[0]} signatures")
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
        with self._lock, self._writer_lock():
            self._check_generation()
            if self.staged == 0 and not any(r.size for r in self._staged_removals):
                self.rollback()
                return
            segments = list(self._segments)
            dead = {s.id: s.dead.copy() for s in segments}
            if self._staged_removals:
                removal = np.unique(np.concatenate(self._staged_removals))
                for seg in segments:
                    i = np.searchsorted(seg.keys, removal)
                    ok = i < seg.n
                    i = i[ok]
                    i = i[seg.keys[i] == removal[ok]]
                    dead[seg.id][i] = True
            plan: list[tuple[np.ndarray, np.ndarray] | _Segment] = list(segments)
            if self.staged:
                keys = np.concatenate(self._staged_keys)
                sigs = np.concatenate(self._staged_sigs)
                for lo in range(0, keys.size, self._max_segment):
                    hi = lo + self._max_segment
                    plan.append((keys[lo:hi], sigs[lo:hi]))
            plan = self._merge_plan(plan, dead)
            self._write_commit(plan, dead)

    def rebuild(self, keys: Sequence[int] | np.ndarray, sigs: np.ndarray) -> None:
        """Replace the whole index with these entries (one commit); drops anything staged."""
        keys = np.asarray(keys)
        if keys.ndim != 1 or (keys.size and not np.issubdtype(keys.dtype, np.integer)):
            raise ValueError(f"keys must be a 1-D integer array, got {keys.dtype} {keys.shape}")
        keys = keys.astype(np.int64)
        sigs = self._as_sigs(sigs)
        if sigs.shape[0] != keys.size:
            raise ValueError(f"{keys.size} keys but {sigs.shape[0]} signatures")
        if np.unique(keys).size != keys.size:
            raise ValueError("keys must be unique")
        with self._lock, self._writer_lock():
            with contextlib.suppress(StoreError, OSError):
                self._generation = max(
                    self._generation, int(_read_meta(self.path).get("generation", 0))
                )
            plan: list[tuple[np.ndarray, np.ndarray] | _Segment] = []
            for lo in range(0, keys.size, self._max_segment):
                plan.append((keys[lo : lo + self._max_segment], sigs[lo : lo + self._max_segment]))
            self._write_commit(plan, {})

    def _merge_plan(
        self, plan: list[tuple[np.ndarray, np.ndarray] | _Segment], dead: dict[int, np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray] | _Segment]:
        """Merge the newest parts while the older is not larger than the newer."""

        def alive(part: tuple[np.ndarray, np.ndarray] | _Segment) -> int:
            if isinstance(part, _Segment):
                return part.n - int(np.count_nonzero(dead[part.id]))
            return int(part[0].size)

        def entries(part: tuple[np.ndarray, np.ndarray] | _Segment) -> tuple[np.ndarray, ...]:
            if isinstance(part, _Segment):
                live = ~dead[part.id]
                return np.asarray(part.keys)[live], np.asarray(part.sigs)[live]
            return part

        out: list[tuple[np.ndarray, np.ndarray] | _Segment] = []
        for part in plan:
            # a segment with more dead than live entries is rewritten (compacted)
            if isinstance(part, _Segment) and 2 * alive(part) < part.n:
                part = entries(part)
            out.append(part)
            while (
                len(out) >= 2
                and alive(out[-2]) <= alive(out[-1])
                and alive(out[-2]) + alive(out[-1]) <= self._max_segment
            ):
                newer = entries(out.pop())
                older = entries(out.pop())
                out.append(
                    (np.concatenate([older[0], newer[0]]), np.concatenate([older[1], newer[1]]))
                )
        return [p for p in out if alive(p) > 0]

    def _write_commit(
        self, plan: list[tuple[np.ndarray, np.ndarray] | _Segment], dead: dict[int, np.ndarray]
    ) -> None:
        """Write new segments, tombstones and meta (the commit point); then swap state."""
        written: list[Path] = []
        next_id = self._next_id
        entries: list[dict] = []
        tomb_codes = []
        try:
            for part in plan:
                if isinstance(part, _Segment):
                    entries.append(
                        {
                            "id": part.id,
                            "file": part.file,
                            "count": part.n,
                            "bytes": part.size,
                            "xxh3_64": part.digest,
                        }
                    )
                    pos = np.flatnonzero(dead[part.id]).astype(np.int64)
                    if pos.size:
                        tomb_codes.append((np.int64(part.id) << np.int64(32)) | pos)
                    continue
                keys, sigs = part
                order = np.argsort(keys, kind="stable")
                keys, sigs = keys[order], np.ascontiguousarray(sigs[order])
                file = f"seg-{next_id:010d}.bin"
                written.append(self.path / file)
                size, digest = self._write_segment(self.path / file, keys, sigs)
                entries.append(
                    {
                        "id": next_id,
                        "file": file,
                        "count": int(keys.size),
                        "bytes": size,
                        "xxh3_64": digest,
                    }
                )
                next_id += 1
            tomb = None
            if tomb_codes:
                codes = np.sort(np.concatenate(tomb_codes))
                file = f"tomb-{self._generation + 1:010d}.npy"
                written.append(self.path / file)
                size, digest = _write_atomic(self.path / file, [_npy_bytes(codes)])
                tomb = {"file": file, "count": int(codes.size), "bytes": size, "xxh3_64": digest}
            if written:
                _fsync_dir(self.path)  # the new files are durable before meta names them
            self._write_meta(entries, tomb, next_id)  # the commit point
        except BaseException:
            for p in written:
                with contextlib.suppress(OSError):
                    os.unlink(p)
            raise
        # committed: from here on the new state is what is on disk
        _fsync_dir(self.path)
        self._staged_keys.clear()
        self._staged_sigs.clear()
        self._staged_removals.clear()
        try:
            self._load(_read_meta(self.path))
        finally:
            self._cleanup()

    def _write_segment(self, path: Path, keys: np.ndarray, sigs: np.ndarray) -> tuple[int, str]:
        n = int(keys.size)
        keys_at, sigs_at, bands_at, total = self._seg_layout(n)
        header = _SEG_HEADER.pack(
            _SEG_MAGIC, FORMAT_VERSION, self.hasher.num_perm, self.bands, self.rows, n
        )
        bh = self.band_hashes(sigs).T.astype(np.uint64)  # (bands, n)
        band = np.arange(self.bands, dtype=np.uint64)[:, None] << np.uint64(64 - self._band_bits)
        pos = np.arange(n, dtype=np.uint64)[None, :]
        flat = np.sort((band | (bh << np.uint64(self._pos_bits)) | pos).ravel())
        pad = b"\0" * (bands_at - sigs_at - 4 * n * self.hasher.num_perm)
        size, digest = _write_atomic(
            path,
            [
                header,
                memoryview(np.ascontiguousarray(keys, dtype="<i8")).cast("B"),
                memoryview(np.ascontiguousarray(sigs, dtype="<u4")).cast("B"),
                pad,
                memoryview(flat.astype("<u8", copy=False)).cast("B"),
            ],
        )
        assert size == total
        return size, digest

    def _write_meta(self, segments: list[dict], tomb: dict | None, next_id: int) -> None:
        """Replace meta.json (temporary file, fsync, os.replace); the directory is not fsynced."""
        count = 0
        for s in segments:
            count += int(s["count"])
        if tomb:
            count -= int(tomb["count"])
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": self._params(),
            "generation": self._generation + 1,
            "next_segment_id": next_id,
            "count": count,
            "segments": segments,
            "tombstones": tomb,
        }
        _write_atomic(self.path / META, [json.dumps(meta, indent=1).encode() + b"\n"])
        self._generation += 1
        self._next_id = next_id

    def _files(self) -> list[str]:
        names = [META] + [s.file for s in self._segments]
        if self._tomb:
            names.append(str(self._tomb["file"]))
        return names

    def _cleanup(self) -> None:
        """Delete index files the committed meta does not name (old segments, temp files)."""
        keep = set(self._files())
        with contextlib.suppress(OSError):
            for p in self.path.iterdir():
                name = p.name
                if name in keep:
                    continue
                if name.startswith(".tmp-") or re.fullmatch(r"(seg-\d+\.bin|tomb-\d+\.npy)", name):
                    with contextlib.suppress(OSError):
                        p.unlink()

    @contextlib.contextmanager
    def _writer_lock(self):  # noqa: ANN202
        if fcntl is None:  # pragma: no cover
            yield
            return
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"Cannot write the near-duplicate index at {self.path}: {exc}.",
                field="path",
                value=str(self.path),
                fix="Check the node home's permissions and free space.",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _check_generation(self) -> None:
        meta = _read_meta(self.path)
        if int(meta.get("generation", -1)) != self._generation:
            raise StoreError(
                f"The near-duplicate index at {self.path} was changed by another process "
                "since it was opened.",
                field="path",
                value=str(self.path),
                fix="Reopen the index and retry; use one writer per datanet.",
            )


class _Raced(Exception):
    """A file named by meta.json vanished because a newer commit replaced it."""


def _corrupt(path: Path, what: str) -> StoreError:
    return StoreError(
        f"The near-duplicate index at {path} is corrupt: {what}.",
        field="path",
        value=str(path),
        fix="Rebuild it from the datanet's records (NearDupIndex.create then rebuild; the "
        "datanet service rebuilds its index from the records it holds).",
    )


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / META).read_bytes())
    except FileNotFoundError as exc:
        raise _corrupt(path, f"{META} is missing") from exc
    except (OSError, ValueError) as exc:
        raise _corrupt(path, f"{META} is unreadable ({exc})") from exc
    if not isinstance(meta, dict):
        raise _corrupt(path, f"{META} is not an object")
    return meta


def _meta_changed(path: Path, generation: int) -> bool:
    try:
        return int(_read_meta(path).get("generation", -1)) != generation
    except (StoreError, TypeError, ValueError):
        return False


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()
