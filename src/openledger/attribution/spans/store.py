"""The on-disk format of a span index: segment directories and ``meta.json``.

An index directory holds ``meta.json`` and one directory per segment (``seg-000001`` ...)
of immutable files:

``tokens.npy``        uint16 (vocabularies up to 65,535) or uint32: the documents' token ids,
                      each document followed by the separator (the dtype's largest value)
``sa.npy``            int32 (up to 2**31 - 1 positions) or int64: the suffix array
``offsets.npy``       int64 (docs + 1): each document's first position, then len(tokens)
``docs.npy``          int64 (docs, 2): each document's record id and contribution id
``contributors.json`` contribution id -> contributor
``unigrams.npy``      int64 (vocab_size): how often each token id occurs in the segment

``meta.json`` names the segments in order, with each file's size and sha256, and records
the tokenizer identity, vocabulary size, token dtype, token and document counts, a
generation and the index hash. A segment's ``parts`` are the content digests of the
segments it was built from (itself when new); the index hash covers the tokenizer, the
vocabulary and the parts in order, so it changes when documents are added and stays the
same across ``merge``.

Writes go to temporary names, are fsynced and moved into place with ``os.replace``;
``meta.json`` is replaced last and is the commit point, so a crash never leaves an index
that opens with half of a write.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openledger.attribution.spans.build import sa_dtype
from openledger.errors import ConflictError, NotFoundError, StoreError
from openledger.fsutil import fsync_dir, write_atomic

FORMAT = "openledger-span-index"
VERSION = 1
META = "meta.json"
LOCK = "lock"
TOKENS = "tokens.npy"
SA = "sa.npy"
OFFSETS = "offsets.npy"
DOCS = "docs.npy"
CONTRIBUTORS = "contributors.json"
UNIGRAMS = "unigrams.npy"
SEGMENT_FILES = (TOKENS, SA, OFFSETS, DOCS, CONTRIBUTORS, UNIGRAMS)
_CHUNK_BYTES = 1 << 24
_TMP_PREFIX = ".tmp-"

try:  # pragma: no cover - always present on Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def corrupt(path: Path, what: str) -> StoreError:
    return StoreError(
        f"The span index at {path} is corrupt: {what}.",
        field="path",
        value=str(path),
        fix="Rebuild it from the model's training snapshot (build_index).",
    )


def _write_chunks(path: Path, chunks: Iterator[bytes | memoryview]) -> dict[str, Any]:
    """Write ``chunks`` to ``path`` (fsynced); its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            digest.update(chunk)
            f.write(chunk)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return {"size": size, "sha256": digest.hexdigest()}


def _npy_chunks(arr: np.ndarray, dtype: np.dtype) -> Iterator[bytes | memoryview]:
    header = io.BytesIO()
    shape = arr.shape
    np.lib.format.write_array_header_1_0(
        header,
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape},
    )
    yield header.getvalue()
    flat = arr.reshape(-1)
    step = max(1, _CHUNK_BYTES // dtype.itemsize)
    for a in range(0, flat.size, step):
        part = np.ascontiguousarray(flat[a : a + step], dtype=dtype)
        yield memoryview(part).cast("B")


def write_npy(path: Path, arr: np.ndarray, dtype: np.dtype | None = None) -> dict[str, Any]:
    """Write ``arr`` as ``.npy`` (converted to ``dtype`` chunk by chunk); size and sha256."""
    return _write_chunks(path, _npy_chunks(arr, np.dtype(dtype or arr.dtype)))


def write_json(path: Path, obj: Any) -> dict[str, Any]:
    return _write_chunks(path, iter([json.dumps(obj, sort_keys=True).encode()]))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def content_digest(files: dict[str, dict[str, Any]]) -> str:
    """A segment's content: its tokens, documents and contributors (not the derived files)."""
    text = "|".join(files[name]["sha256"] for name in (TOKENS, OFFSETS, DOCS, CONTRIBUTORS))
    return hashlib.sha256(text.encode()).hexdigest()


def index_hash(tokenizer: str, vocab_size: int, parts: list[str]) -> str:
    body = json.dumps(
        {"format": FORMAT, "tokenizer": tokenizer, "vocab_size": vocab_size, "parts": parts},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class SegmentData:
    """One segment's arrays (in memory or mapped) as written to or read from disk."""

    tokens: np.ndarray
    sa: np.ndarray
    offsets: np.ndarray
    docs: np.ndarray
    contributors: dict[int, str]
    unigrams: np.ndarray


def write_segment(root: Path, name: str, seg: SegmentData, parts: list[str] | None) -> dict:
    """Write ``seg`` as the segment directory ``root/name``; its ``meta.json`` entry.

    The files go to a temporary directory that is renamed into place once complete.
    ``parts`` defaults to the new segment's own content digest.
    """
    final = root / name
    sa_type = sa_dtype(seg.tokens.size)
    if final.exists():
        raise corrupt(root, f"segment {name} exists but meta.json does not name it")
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=root))
    try:
        files = {
            TOKENS: write_npy(tmp / TOKENS, seg.tokens),
            SA: write_npy(tmp / SA, seg.sa, sa_type),
            OFFSETS: write_npy(tmp / OFFSETS, seg.offsets),
            DOCS: write_npy(tmp / DOCS, seg.docs),
            CONTRIBUTORS: write_json(
                tmp / CONTRIBUTORS, {str(k): v for k, v in sorted(seg.contributors.items())}
            ),
            UNIGRAMS: write_npy(tmp / UNIGRAMS, seg.unigrams),
        }
        fsync_dir(tmp)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    return {
        "name": name,
        "positions": int(seg.tokens.size),
        "tokens": int(seg.unigrams.sum()),
        "docs": int(seg.docs.shape[0]),
        "sa_dtype": str(sa_type),
        "parts": parts if parts is not None else [content_digest(files)],
        "files": files,
    }


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    # np.asarray drops the memmap subclass: plain ndarrays index faster
    return np.asarray(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))


def read_segment(
    root: Path, entry: dict, *, mmap: bool = True, verify: bool = False
) -> SegmentData:
    """Open the segment ``entry`` of meta.json, checking file sizes (and sha256s if
    ``verify``)."""
    folder = root / entry["name"]
    for fname, info in entry["files"].items():
        path = folder / fname
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise corrupt(root, f"{entry['name']}/{fname} is missing") from exc
        if size != info["size"]:
            raise corrupt(root, f"{entry['name']}/{fname} has {size} bytes, not {info['size']}")
        if verify and file_sha256(path) != info["sha256"]:
            raise corrupt(root, f"{entry['name']}/{fname} does not match its sha256")
    try:
        contributors = json.loads((folder / CONTRIBUTORS).read_bytes())
        return SegmentData(
            tokens=_load_npy(folder / TOKENS, mmap),
            sa=_load_npy(folder / SA, mmap),
            offsets=_load_npy(folder / OFFSETS, False),
            docs=_load_npy(folder / DOCS, False),
            contributors={int(k): str(v) for k, v in contributors.items()},
            unigrams=_load_npy(folder / UNIGRAMS, False),
        )
    except (OSError, ValueError) as exc:
        raise corrupt(root, f"segment {entry['name']} is unreadable ({exc})") from exc


def read_meta(path: Path) -> dict:
    meta_path = path / META
    if not meta_path.exists():
        raise NotFoundError(
            f"There is no span index at {path} (no {META}).",
            field="path",
            value=str(path),
            fix="Build one with build_index (the model's span index, method spans).",
        )
    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise corrupt(path, f"{META} is unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise corrupt(path, f"{META} is not a span index's")
    if meta.get("version") != VERSION:
        raise corrupt(path, f"format version {meta.get('version')!r}, expected {VERSION}")
    return meta


def write_meta(path: Path, meta: dict) -> None:
    """Replace ``meta.json``: the commit point of every write."""
    write_atomic(path / META, json.dumps(meta, indent=1, sort_keys=True))


def ensure_new(path: Path, overwrite: bool) -> None:
    """Refuse to build over an existing index unless ``overwrite``."""
    if (path / META).exists() and not overwrite:
        raise ConflictError(
            f"A span index already exists at {path}.",
            field="path",
            value=str(path),
            fix="Pass overwrite=True to replace it, add documents with add_segment, or "
            "choose another directory.",
        )


def cleanup(path: Path, keep: set[str]) -> None:
    """Delete temporary files and segment directories ``meta.json`` no longer names."""
    for child in path.iterdir():
        name = child.name
        stale = name.startswith(_TMP_PREFIX) or (
            name.startswith("seg-") and child.is_dir() and name not in keep
        )
        if stale:
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive ``flock`` on the index's ``lock`` file (one writer at a time)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
