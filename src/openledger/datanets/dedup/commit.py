"""Commits of a near-duplicate index: which segments to write, merge or keep, and writing them.

A commit writes the staged entries as a new segment and merges the newest segments while
the older one is not larger than the newer one (so there are about log2(n) segments and
each entry is rewritten about log2(n) times); a segment with more dead than live entries
is rewritten without them. Removals are tombstones (segment, position) until their segment
is merged.

New segment and tombstone files are written first, then the directory is fsynced, then
``meta.json`` is replaced: the commit point. Files written by a commit that fails before
its commit point are deleted again. One writer at a time: a commit holds an ``flock`` on
the index's ``lock`` file and fails with ``StoreError`` if another process committed
since this one opened the index.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from openledger.datanets.dedup.lsh import Banding
from openledger.datanets.dedup.segments import (
    LOCK,
    Segment,
    SegmentFormat,
    npy_bytes,
    read_meta,
    write_with_digest,
)
from openledger.errors import StoreError
from openledger.fsutil import fsync_dir

try:  # pragma: no cover - always present on Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

MAX_SEGMENT = 1 << 21  # entries; merging stops at this size (about 1.5 GB at 128 perms)

Part = tuple[np.ndarray, np.ndarray] | Segment  # new entries (keys, sigs) or a kept segment
MetaWriter = Callable[[list[dict], dict | None, int], None]


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive ``flock`` on the index's ``lock`` file (one writer at a time)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"Cannot write the near-duplicate index at {path}: {exc}.",
            field="path",
            value=str(path),
            fix="Check the node home's permissions and free space.",
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_generation(path: Path, generation: int) -> None:
    """``StoreError`` if the index at ``path`` was committed past ``generation`` meanwhile."""
    meta = read_meta(path)
    if int(meta.get("generation", -1)) != generation:
        raise StoreError(
            f"The near-duplicate index at {path} was changed by another process "
            "since it was opened.",
            field="path",
            value=str(path),
            fix="Reopen the index and retry; use one writer per datanet.",
        )


def new_parts(keys: np.ndarray, sigs: np.ndarray, max_segment: int) -> list[Part]:
    """``keys`` and ``sigs`` cut into new parts of at most ``max_segment`` entries."""
    return [
        (keys[lo : lo + max_segment], sigs[lo : lo + max_segment])
        for lo in range(0, keys.size, max_segment)
    ]


def dead_after(segments: Sequence[Segment], removals: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Each segment's dead mask once the keys in ``removals`` are removed as well."""
    dead = {s.id: s.dead.copy() for s in segments}
    if removals:
        removal = np.unique(np.concatenate(removals))
        for seg in segments:
            i = np.searchsorted(seg.keys, removal)
            ok = i < seg.n
            i = i[ok]
            i = i[seg.keys[i] == removal[ok]]
            dead[seg.id][i] = True
    return dead


def merge_plan(plan: list[Part], dead: dict[int, np.ndarray], max_segment: int) -> list[Part]:
    """Merge the newest parts while the older is not larger than the newer."""

    def alive(part: Part) -> int:
        if isinstance(part, Segment):
            return part.n - int(np.count_nonzero(dead[part.id]))
        return int(part[0].size)

    def entries(part: Part) -> tuple[np.ndarray, ...]:
        if isinstance(part, Segment):
            live = ~dead[part.id]
            return np.asarray(part.keys)[live], np.asarray(part.sigs)[live]
        return part

    out: list[Part] = []
    for part in plan:
        # a segment with more dead than live entries is rewritten (compacted)
        if isinstance(part, Segment) and 2 * alive(part) < part.n:
            part = entries(part)
        out.append(part)
        while (
            len(out) >= 2
            and alive(out[-2]) <= alive(out[-1])
            and alive(out[-2]) + alive(out[-1]) <= max_segment
        ):
            newer = entries(out.pop())
            older = entries(out.pop())
            out.append((np.concatenate([older[0], newer[0]]), np.concatenate([older[1], newer[1]])))
    return [p for p in out if alive(p) > 0]


def write_commit(
    path: Path,
    plan: list[Part],
    dead: dict[int, np.ndarray],
    *,
    fmt: SegmentFormat,
    banding: Banding,
    generation: int,
    next_id: int,
    write_meta: MetaWriter,
) -> None:
    """Write the new segments and tombstones of ``plan``, then ``write_meta`` (the commit point).

    ``generation`` is the committed one; ``next_id`` the first free segment id.
    ``write_meta(segment entries, tombstone entry, next free id)`` replaces meta.json.
    """
    written: list[Path] = []
    entries: list[dict] = []
    tomb_codes = []
    try:
        for part in plan:
            if isinstance(part, Segment):
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
            written.append(path / file)
            size, digest = fmt.write(path / file, keys, sigs, banding.entries(sigs))
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
            file = f"tomb-{generation + 1:010d}.npy"
            written.append(path / file)
            size, digest = write_with_digest(path / file, [npy_bytes(codes)])
            tomb = {"file": file, "count": int(codes.size), "bytes": size, "xxh3_64": digest}
        if written:
            fsync_dir(path)  # the new files are durable before meta names them
        write_meta(entries, tomb, next_id)  # the commit point
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                os.unlink(p)
        raise
