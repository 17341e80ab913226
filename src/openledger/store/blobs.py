"""Content-addressed blob store on the local file system.

A blob is named by the sha256 of its content (64 lowercase hex digits) and lives at
``root/ab/cd/abcd...``. Writes go to a temporary file, are fsynced and then renamed into
place with ``os.replace``, so a reader never sees a partial blob and a crash leaves at most
a stray temporary file (never a wrong blob). Reads through :meth:`BlobStore.get` (and
:meth:`BlobStore.open` with ``verify=True``) check the content against the name.

An S3-compatible store can stand behind the same interface at scale.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from openledger.errors import BlobCorruptedError, NotFoundError, StoreError, ValidationError
from openledger.fsutil import fsync_dir

CHUNK_SIZE = 1024 * 1024
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = ".tmp-"
_STAGING_DIR = ".staging"


def blob_bytes(data: object) -> bytes:
    """``data`` as bytes, for any blob store's ``put``; a ValidationError for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(
            f"blob content must be bytes, got {type(data).__name__}.",
            field="data",
            value=type(data).__name__,
            fix="encode text first (e.g. text.encode('utf-8')).",
        )
    return bytes(data)


class BlobStore:
    """Blobs named by their sha256, under ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the blob store directory {str(self.root)!r}: "
                f"{exc.strerror or exc}.",
                field="blob root",
                value=str(self.root),
                fix="point the node home at a writable directory or fix its permissions.",
            ) from exc

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"

    # ------------------------------------------------------------------ names

    @staticmethod
    def check_sha(sha: object) -> str:
        """``sha`` in canonical form (lowercase hex); ValidationError if malformed."""
        if isinstance(sha, str):
            canonical = sha.strip().lower()
            if _SHA_RE.match(canonical):
                return canonical
        raise ValidationError(
            f"blob hash {sha!r} is not a sha256 hex digest.",
            field="sha256",
            value=sha if isinstance(sha, str) else repr(sha),
            fix="pass the 64 hex digits that put() returned.",
        )

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        sha = self.check_sha(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def size(self, sha: str) -> int:
        """The blob's size in bytes."""
        path = self._existing(sha)
        return path.stat().st_size

    def _existing(self, sha: str) -> Path:
        path = self.path(sha)
        if not path.is_file():
            raise NotFoundError(
                f"blob {self.check_sha(sha)} is not in the blob store at {str(self.root)!r}.",
                field="sha256",
                value=self.check_sha(sha),
                fix="check the hash, or upload the content again.",
            )
        return path

    def _corrupted(self, sha: str, path: Path, actual: str) -> BlobCorruptedError:
        return BlobCorruptedError(
            f"blob {sha} at {str(path)!r} is corrupted: its content hashes to {actual}.",
            field="sha256",
            value=sha,
            fix="re-upload the original content (put() repairs the blob) or restore the file "
            "from a backup.",
        )

    # ------------------------------------------------------------------ writing

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its sha256. Identical content is stored once."""
        data = blob_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        final = self.path(sha)
        if self._intact(sha, final):
            return sha
        self._ensure_dir(final.parent)
        with self._temp_file(final.parent) as (tmp_path, f):
            self._write(f, data, tmp_path)
            self._commit(f, tmp_path, final)
        return sha

    def put_file(self, path: Path | str) -> str:
        """Store the content of the file at ``path`` (streamed); returns its sha256."""
        path = Path(path)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(
                f"file {str(path)!r} does not exist.",
                field="path",
                value=str(path),
                fix="check the path of the file to store.",
            ) from None
        except OSError as exc:
            raise ValidationError(
                f"cannot read the file {str(path)!r}: {exc.strerror or exc}.",
                field="path",
                value=str(path),
                fix="pass a readable regular file.",
            ) from exc
        with f:
            return self.put_stream(f)

    def put_stream(self, stream: BinaryIO) -> str:
        """Store everything read from ``stream`` (hashed while copying); returns its sha256.

        If reading fails part-way, nothing is stored and the partial copy is removed.
        """
        staging = self.root / _STAGING_DIR
        self._ensure_dir(staging)
        digest = hashlib.sha256()
        with self._temp_file(staging) as (tmp_path, f):
            while True:
                chunk = stream.read(CHUNK_SIZE)
                if not chunk:
                    break
                digest.update(chunk)
                self._write(f, chunk, tmp_path)
            sha = digest.hexdigest()
            final = self.path(sha)
            if self._intact(sha, final):
                return sha
            self._ensure_dir(final.parent)
            self._commit(f, tmp_path, final)
        return sha

    def _intact(self, sha: str, final: Path) -> bool:
        """True if ``final`` holds exactly the content named ``sha`` (then it is kept)."""
        if not final.is_file():
            return False
        try:
            return self._hash_file(final) == sha
        except OSError:
            return False

    def _ensure_dir(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._write_error(directory, exc) from exc

    def _write_error(self, where: Path, exc: OSError) -> StoreError:
        return StoreError(
            f"cannot write to the blob store at {str(where)!r}: {exc.strerror or exc}.",
            field="blob root",
            value=str(self.root),
            fix="free disk space or fix the permissions of the node home.",
        )

    @contextlib.contextmanager
    def _temp_file(self, directory: Path) -> Iterator[tuple[Path, BinaryIO]]:
        """A temporary file in ``directory``, removed unless it was renamed into place."""
        try:
            fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=directory)
        except OSError as exc:
            raise self._write_error(directory, exc) from exc
        tmp_path = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                yield tmp_path, f
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()

    def _write(self, f: BinaryIO, data: bytes, tmp_path: Path) -> None:
        try:
            f.write(data)
        except OSError as exc:
            raise self._write_error(tmp_path.parent, exc) from exc

    def _commit(self, f: BinaryIO, tmp_path: Path, final: Path) -> None:
        """Make the temporary file durable, then atomically give it its final name."""
        try:
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp_path, 0o644)
            os.replace(tmp_path, final)
        except OSError as exc:
            raise self._write_error(final.parent, exc) from exc
        fsync_dir(final.parent)

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _hash_file(path: Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        return digest.hexdigest()

    def get(self, sha: str) -> bytes:
        """The blob's content, checked against its name (BlobCorruptedError if it differs)."""
        sha = self.check_sha(sha)
        path = self._existing(sha)
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise self._corrupted(sha, path, actual)
        return data

    def open(self, sha: str, *, verify: bool = True) -> BinaryIO:
        """A binary file object reading the blob.

        With ``verify`` (the default) the content is hashed as it is read and
        BlobCorruptedError is raised when the end is reached with a wrong hash; such a
        reader cannot seek. ``verify=False`` returns the plain, seekable file.
        """
        sha = self.check_sha(sha)
        path = self._existing(sha)
        f = path.open("rb")
        if not verify:
            return f
        raw = _VerifyingReader(f, sha, path, self)
        return io.BufferedReader(raw, CHUNK_SIZE)  # type: ignore[return-value]

    def verify(self, sha: str) -> bool:
        """True if the blob's content still matches its name (NotFoundError if absent)."""
        sha = self.check_sha(sha)
        return self._hash_file(self._existing(sha)) == sha

    def iter_hashes(self) -> Iterator[str]:
        """The hash of every stored blob, in sorted order."""
        for first in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if not (first.is_dir() and re.fullmatch(r"[0-9a-f]{2}", first.name)):
                continue
            for second in sorted(first.iterdir()):
                if not (second.is_dir() and re.fullmatch(r"[0-9a-f]{2}", second.name)):
                    continue
                for blob in sorted(second.iterdir()):
                    name = blob.name
                    if (
                        _SHA_RE.match(name)
                        and name[:2] == first.name
                        and name[2:4] == second.name
                        and blob.is_file()
                    ):
                        yield name

    # ------------------------------------------------------------------ deleting

    def delete(self, sha: str, *, missing_ok: bool = False) -> bool:
        """Remove the blob; True if it was there. NotFoundError if absent (unless missing_ok)."""
        sha = self.check_sha(sha)
        path = self.path(sha)
        try:
            path.unlink()
        except FileNotFoundError:
            if missing_ok:
                return False
            self._existing(sha)  # raises NotFoundError
            return False  # pragma: no cover - raced with a put
        fsync_dir(path.parent)
        for directory in (path.parent, path.parent.parent):
            try:
                directory.rmdir()
            except OSError:
                break
        return True

    def cleanup_temp(self) -> int:
        """Remove temporary files left by interrupted writes; returns how many.

        Only safe while no other process writes to this store.
        """
        removed = 0
        for tmp in self.root.rglob(f"{_TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
        return removed


class _VerifyingReader(io.RawIOBase):
    """Reads a blob file, hashing it; raises BlobCorruptedError at EOF on a mismatch."""

    def __init__(self, f: BinaryIO, sha: str, path: Path, store: BlobStore) -> None:
        super().__init__()
        self._f = f
        self._sha = sha
        self._path = path
        self._store = store
        self._digest = hashlib.sha256()
        self._checked = False
        self.name = str(path)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._f.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._digest.update(memoryview(buffer)[:n])
        elif not self._checked:
            self._checked = True
            actual = self._digest.hexdigest()
            if actual != self._sha:
                raise self._store._corrupted(self._sha, self._path, actual)
        return n

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


__all__ = ["CHUNK_SIZE", "BlobStore"]
