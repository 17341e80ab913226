"""On-disk format of a near-duplicate index: segment files, tombstones and ``meta.json``.

An index directory holds immutable segment files plus ``meta.json``. A segment
``seg-NNNNNNNNNN.bin`` is a 64-byte header (magic, version, num_perm, bands, rows, n), its
keys (int64, sorted), the signature matrix (uint32, n x num_perm), zero padding to a
multiple of 8 bytes and one sorted uint64 array of band entries (see ``lsh``). Removals
are tombstones: one sorted int64 ``.npy`` file ``tomb-NNNNNNNNNN.npy`` of
``segment_id << 32 | position``. ``meta.json`` names the segments and the tombstone file
with their sizes and xxh3_64 checksums, the parameters the index was built with, its
generation and its entry count.

Every file is written to a temporary name, fsynced and moved into place with
``os.replace``; readers map segments read-only. A file named by ``meta.json`` that is
missing because a newer commit replaced it meanwhile raises ``Raced`` (the reader retries).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from openledger.errors import StoreError

FORMAT = "openledger-neardup-index"
FORMAT_VERSION = 1
META = "meta.json"
LOCK = "lock"
_SEG_MAGIC = b"OLNDSEG1"
_SEG_HEADER = struct.Struct("<8sIIIIQ32x")  # magic, version, num_perm, bands, rows, n
_SEG_HEADER_SIZE = 64


class Raced(Exception):
    """A file named by meta.json vanished because a newer commit replaced it."""


def corrupt(path: Path, what: str) -> StoreError:
    return StoreError(
        f"The near-duplicate index at {path} is corrupt: {what}.",
        field="path",
        value=str(path),
        fix="Rebuild it from the datanet's records (NearDupIndex.create then rebuild; the "
        "datanet service rebuilds its index from the records it holds).",
    )


def read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / META).read_bytes())
    except FileNotFoundError as exc:
        raise corrupt(path, f"{META} is missing") from exc
    except (OSError, ValueError) as exc:
        raise corrupt(path, f"{META} is unreadable ({exc})") from exc
    if not isinstance(meta, dict):
        raise corrupt(path, f"{META} is not an object")
    return meta


def meta_changed(path: Path, generation: int) -> bool:
    try:
        return int(read_meta(path).get("generation", -1)) != generation
    except (StoreError, TypeError, ValueError):
        return False


def write_with_digest(path: Path, chunks: Iterable[bytes | memoryview]) -> tuple[int, str]:
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


def file_digest(path: Path) -> str:
    digest = xxhash.xxh3_64()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@dataclass
class Segment:
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


@dataclass(frozen=True)
class SegmentFormat:
    """Reads and writes the segment files of an index built with these parameters."""

    num_perm: int
    bands: int
    rows: int

    def layout(self, n: int) -> tuple[int, int, int, int]:
        """Offsets of keys, sigs, bands and the total size of a segment of ``n`` entries."""
        keys_at = _SEG_HEADER_SIZE
        sigs_at = keys_at + 8 * n
        bands_at = sigs_at + 4 * n * self.num_perm
        bands_at += -bands_at % 8
        return keys_at, sigs_at, bands_at, bands_at + 8 * n * self.bands

    def open(self, directory: Path, entry: dict, generation: int) -> Segment:
        """Map the segment ``entry`` of meta.json (at ``generation``) read-only."""
        file = str(entry["file"])
        n = int(entry["count"])
        if not re.fullmatch(r"seg-\d+\.bin", file):
            raise corrupt(directory, f"bad segment name {file!r}")
        fpath = directory / file
        keys_at, sigs_at, bands_at, total = self.layout(n)
        try:
            size = fpath.stat().st_size
        except FileNotFoundError as exc:
            if meta_changed(directory, generation):
                raise Raced() from exc
            raise corrupt(directory, f"segment {file} is missing") from exc
        if size != total or size != int(entry["bytes"]):
            raise corrupt(directory, f"segment {file} has {size} bytes, expected {total}")
        try:
            data = np.memmap(fpath, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise corrupt(directory, f"segment {file} cannot be mapped ({exc})") from exc
        magic, version, num_perm, bands, rows, count = _SEG_HEADER.unpack(
            bytes(data[:_SEG_HEADER_SIZE])
        )
        if (magic, version, num_perm, bands, rows, count) != (
            _SEG_MAGIC,
            FORMAT_VERSION,
            self.num_perm,
            self.bands,
            self.rows,
            n,
        ):
            raise corrupt(directory, f"segment {file} has a wrong header")
        keys = data[keys_at:sigs_at].view("<i8")
        sigs = data[sigs_at : sigs_at + 4 * n * self.num_perm].view("<u4")
        return Segment(
            id=int(entry["id"]),
            file=file,
            keys=keys,
            sigs=sigs.reshape(n, self.num_perm),
            bands=data[bands_at:total].view("<u8"),
            dead=np.zeros(n, dtype=bool),
            size=size,
            digest=str(entry["xxh3_64"]),
        )

    def write(
        self, path: Path, keys: np.ndarray, sigs: np.ndarray, band_entries: np.ndarray
    ) -> tuple[int, str]:
        """Write a segment of sorted ``keys``, their ``sigs`` and sorted ``band_entries``.

        Returns (size, xxh3_64 hex digest); the directory is not fsynced here.
        """
        n = int(keys.size)
        keys_at, sigs_at, bands_at, total = self.layout(n)
        header = _SEG_HEADER.pack(
            _SEG_MAGIC, FORMAT_VERSION, self.num_perm, self.bands, self.rows, n
        )
        pad = b"\0" * (bands_at - sigs_at - 4 * n * self.num_perm)
        size, digest = write_with_digest(
            path,
            [
                header,
                memoryview(np.ascontiguousarray(keys, dtype="<i8")).cast("B"),
                memoryview(np.ascontiguousarray(sigs, dtype="<u4")).cast("B"),
                pad,
                memoryview(band_entries.astype("<u8", copy=False)).cast("B"),
            ],
        )
        assert size == total
        return size, digest


def read_tombstones(directory: Path, entry: dict, generation: int) -> np.ndarray:
    """The tombstone codes (int64, ``segment_id << 32 | position``) of meta.json's ``entry``."""
    file = str(entry["file"])
    fpath = directory / file
    if not re.fullmatch(r"tomb-\d+\.npy", file):
        raise corrupt(directory, f"bad tombstone file name {file!r}")
    try:
        if fpath.stat().st_size != int(entry["bytes"]):
            raise corrupt(directory, f"tombstone file {file} has the wrong size")
        codes = np.load(fpath, allow_pickle=False)
    except FileNotFoundError as exc:
        if meta_changed(directory, generation):
            raise Raced() from exc
        raise corrupt(directory, f"tombstone file {file} is missing") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise corrupt(directory, f"tombstone file {file} is unreadable ({exc})") from exc
    if codes.dtype != np.int64 or codes.ndim != 1 or codes.size != int(entry["count"]):
        raise corrupt(directory, f"tombstone file {file} has the wrong shape")
    return codes


def load_state(
    path: Path, meta: dict, params: dict[str, Any], fmt: SegmentFormat
) -> tuple[list[Segment], int, int, dict | None]:
    """The committed state ``meta`` describes: (segments, generation, next id, tombstones).

    Tombstones are applied to the segments' ``dead`` masks. ``StoreError`` if the files are
    corrupt or were built with other ``params``; ``Raced`` if a newer commit replaced them.
    """
    try:
        if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
            raise corrupt(
                path,
                f"unknown format {meta.get('format')!r} version {meta.get('version')!r}",
            )
        stored = meta["params"]
        if stored != params:
            built = ", ".join(f"{k}={v}" for k, v in stored.items())
            asked = ", ".join(f"{k}={v}" for k, v in params.items())
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
        segments = [fmt.open(path, s, generation) for s in meta["segments"]]
        tomb = meta.get("tombstones") or None
        if tomb:
            codes = read_tombstones(path, tomb, generation)
            by_id = {s.id: s for s in segments}
            seg_ids = codes >> np.int64(32)
            for seg_id in np.unique(seg_ids):
                seg = by_id.get(int(seg_id))
                sel = codes[seg_ids == seg_id] & np.int64(0xFFFFFFFF)
                if seg is None or int(sel.max()) >= seg.n:
                    raise corrupt(path, "tombstones name entries that do not exist")
                seg.dead[sel] = True
        for seg in segments:
            seg.alive = seg.n - int(np.count_nonzero(seg.dead))
        alive = sum(s.alive for s in segments)
        if alive != int(meta["count"]):
            raise corrupt(path, f"meta.json counts {meta['count']} entries, files hold {alive}")
    except (StoreError, Raced):
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise corrupt(path, f"meta.json is malformed ({exc!r})") from exc
    return segments, generation, next_id, dict(tomb) if tomb else None


def write_meta(
    path: Path,
    params: dict[str, Any],
    generation: int,
    next_id: int,
    segments: list[dict],
    tomb: dict | None,
) -> None:
    """Replace meta.json (temporary file, fsync, os.replace); the directory is not fsynced."""
    count = 0
    for s in segments:
        count += int(s["count"])
    if tomb:
        count -= int(tomb["count"])
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "params": params,
        "generation": generation,
        "next_segment_id": next_id,
        "count": count,
        "segments": segments,
        "tombstones": tomb,
    }
    write_with_digest(path / META, [json.dumps(meta, indent=1).encode() + b"\n"])


def verify_files(path: Path, segments: list[Segment], tomb: dict | None) -> None:
    """Check every file's checksum and every array's order; ``StoreError`` if corrupt."""
    for seg in segments:
        if file_digest(path / seg.file) != seg.digest:
            raise corrupt(path, f"segment {seg.file} fails its checksum")
        keys, bands = seg.keys, seg.bands
        if np.any(keys[1:] <= keys[:-1]) or np.any(bands[1:] < bands[:-1]):
            raise corrupt(path, f"segment {seg.file} is not sorted")
    if tomb and file_digest(path / tomb["file"]) != tomb.get("xxh3_64"):
        raise corrupt(path, f"tombstone file {tomb['file']} fails its checksum")


def cleanup(path: Path, keep: set[str]) -> None:
    """Delete index files not in ``keep`` (old segments and tombstones, temporary files)."""
    with contextlib.suppress(OSError):
        for p in path.iterdir():
            name = p.name
            if name in keep:
                continue
            if name.startswith(".tmp-") or re.fullmatch(r"(seg-\d+\.bin|tomb-\d+\.npy)", name):
                with contextlib.suppress(OSError):
                    p.unlink()
