"""Content-addressed blobs in S3-compatible storage, behind :class:`BlobStore`'s interface.

``OPENLEDGER_BLOBS_URL=s3://bucket/prefix`` puts every blob of the node at
``s3://bucket/prefix/ab/cd/abcd…`` (its sha256, as on disk), through fsspec/s3fs, so several
nodes share one store. An object is written whole by one PUT (a reader never sees half of
one) and is checked against its name on every read. The endpoint and credentials are the
AWS SDK's usual ones (``AWS_ENDPOINT_URL`` for MinIO, Ceph, R2, …; ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` or an instance role).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from openledger.errors import (
    BlobCorruptedError,
    ConfigError,
    NotFoundError,
    StoreError,
)
from openledger.store.blobs import CHUNK_SIZE, BlobStore, blob_bytes

_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[^?#]*)?$")


class S3BlobStore:
    """Blobs named by their sha256 under ``s3://bucket/prefix``."""

    def __init__(self, url: str, *, fs: Any = None) -> None:
        m = _URL.match(url.strip())
        if m is None:
            raise ConfigError(
                f"The blob store URL {url!r} is not an s3:// URL.",
                field="OPENLEDGER_BLOBS_URL",
                value=url,
                fix="use s3://BUCKET/PREFIX (a bucket name is 3-63 lowercase letters, digits, "
                "dots and hyphens), or unset it to keep blobs in the node home.",
            )
        self.url = url.strip().rstrip("/")
        self.bucket = m.group(1)
        self.prefix = (m.group(2) or "").strip("/")
        self.root = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        if fs is None:
            import s3fs

            endpoint = os.environ.get("AWS_ENDPOINT_URL")
            fs = s3fs.S3FileSystem(
                endpoint_url=endpoint or None, use_listings_cache=False, skip_instance_cache=True
            )
        self.fs = fs
        self._check_bucket()

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r})"

    def _check_bucket(self) -> None:
        try:
            found = self.fs.exists(self.bucket)
        except Exception as exc:  # no endpoint, no credentials, no network
            raise StoreError(
                f"cannot reach the blob store {self.url!r}: {type(exc).__name__}: {exc}.",
                field="OPENLEDGER_BLOBS_URL",
                value=self.url,
                fix="check AWS_ENDPOINT_URL, the credentials (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY) and that the S3 service answers.",
            ) from exc
        if not found:
            raise StoreError(
                f"the bucket {self.bucket!r} of the blob store {self.url!r} does not exist.",
                field="OPENLEDGER_BLOBS_URL",
                value=self.url,
                fix=f"create it (e.g. `aws s3 mb s3://{self.bucket}`) or point "
                "OPENLEDGER_BLOBS_URL at an existing bucket.",
            )

    # ------------------------------------------------------------------ names

    check_sha = staticmethod(BlobStore.check_sha)

    def key(self, sha: str) -> str:
        """The object key of blob ``sha`` (bucket/prefix/ab/cd/sha)."""
        sha = self.check_sha(sha)
        return f"{self.root}/{sha[:2]}/{sha[2:4]}/{sha}"

    def exists(self, sha: str) -> bool:
        return bool(self.fs.exists(self.key(sha)))

    def size(self, sha: str) -> int:
        return int(self._info(sha)["size"])

    def _info(self, sha: str) -> dict[str, Any]:
        try:
            return self.fs.info(self.key(sha))
        except FileNotFoundError:
            raise self._missing(sha) from None

    def _missing(self, sha: str) -> NotFoundError:
        sha = self.check_sha(sha)
        return NotFoundError(
            f"blob {sha} is not in the blob store at {self.url!r}.",
            field="sha256",
            value=sha,
            fix="check the hash, or upload the content again.",
        )

    # ------------------------------------------------------------------ writing

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its sha256. Identical content is stored once."""
        data = blob_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        if not self._intact(sha):
            self._write(self.key(sha), data)
        return sha

    def put_file(self, path: Path | str) -> str:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"file {str(path)!r} does not exist.",
                field="path",
                value=str(path),
                fix="check the path of the file to store.",
            ) from None
        return self.put(data)

    def put_stream(self, stream: BinaryIO) -> str:
        return self.put(stream.read())

    def _intact(self, sha: str) -> bool:
        try:
            return hashlib.sha256(self.fs.cat_file(self.key(sha))).hexdigest() == sha
        except FileNotFoundError:
            return False

    def _write(self, key: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(key, data)  # one PUT: the object appears whole or not at all
        except Exception as exc:
            raise StoreError(
                f"cannot write to the blob store {self.url!r}: {type(exc).__name__}: {exc}.",
                field="OPENLEDGER_BLOBS_URL",
                value=self.url,
                fix="check the credentials may write to the bucket and that it has room.",
            ) from exc

    # ------------------------------------------------------------------ reading

    def get(self, sha: str) -> bytes:
        """The blob's content, checked against its name (BlobCorruptedError if it differs)."""
        sha = self.check_sha(sha)
        try:
            data = self.fs.cat_file(self.key(sha))
        except FileNotFoundError:
            raise self._missing(sha) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise BlobCorruptedError(
                f"blob {sha} at {self.url}/{sha[:2]}/{sha[2:4]}/{sha} is corrupted: its "
                f"content hashes to {actual}.",
                field="sha256",
                value=sha,
                fix="re-upload the original content (put() repairs the blob) or restore the "
                "object from a backup.",
            )
        return data

    def open(self, sha: str, *, verify: bool = True) -> BinaryIO:
        """A file object reading the blob (read whole and checked when ``verify``)."""
        if verify:
            return io.BytesIO(self.get(sha))
        try:
            return self.fs.open(self.key(sha), "rb", block_size=CHUNK_SIZE)
        except FileNotFoundError:
            raise self._missing(sha) from None

    def verify(self, sha: str) -> bool:
        try:
            self.get(sha)
        except BlobCorruptedError:
            return False
        return True

    def iter_hashes(self) -> Iterator[str]:
        """The hash of every stored blob, in sorted order."""
        try:
            keys = self.fs.find(self.root)
        except FileNotFoundError:
            return
        names = (k.rsplit("/", 1)[-1] for k in keys)
        yield from sorted(n for n in names if re.fullmatch(r"[0-9a-f]{64}", n))

    # ------------------------------------------------------------------ deleting

    def delete(self, sha: str, *, missing_ok: bool = False) -> bool:
        key = self.key(sha)
        if not self.fs.exists(key):
            if missing_ok:
                return False
            raise self._missing(sha)
        self.fs.rm_file(key)
        return True

    def cleanup_temp(self) -> int:
        """Nothing to clean: an object is written by one PUT."""
        return 0


def open_blob_store(url: str, local_root: Path) -> BlobStore | S3BlobStore:
    """The node's blob store: files under ``local_root`` unless ``url`` names S3."""
    if not url:
        return BlobStore(local_root)
    if url.startswith("s3://"):
        return S3BlobStore(url)
    if url.startswith("file://"):
        return BlobStore(Path(url.removeprefix("file://")))
    raise ConfigError(
        f"The blob store URL {url!r} is neither s3:// nor file://.",
        field="OPENLEDGER_BLOBS_URL",
        value=url,
        fix="use s3://BUCKET/PREFIX, file:///path, or unset it (blobs in the node home).",
    )


__all__ = ["S3BlobStore", "open_blob_store"]
