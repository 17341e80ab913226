"""Content-addressed blobs: names, atomic writes, corruption detected on read."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openledger.errors import BlobCorruptedError, NotFoundError, StoreError, ValidationError
from openledger.store import BlobStore
from openledger.store.blobs import CHUNK_SIZE


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_round_trip_and_name(store: BlobStore) -> None:
    data = b"hello, datanet"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.exists(sha)
    assert store.get(sha) == data
    assert store.path(sha) == store.root / sha[:2] / sha[2:4] / sha
    assert store.path(sha).read_bytes() == data
    assert store.size(sha) == len(data)
    assert store.verify(sha)
    assert list(store.iter_hashes()) == [sha]


def test_empty_blob(store: BlobStore) -> None:
    sha = store.put(b"")
    assert sha == hashlib.sha256(b"").hexdigest()
    assert store.get(sha) == b""


def test_put_file_streams_large_files(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    sha = store.put_file(src)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get(sha) == data
    assert store.put(data) == sha  # same name whichever way it came in
    with store.open(sha) as f:
        assert f.read() == data
    with store.open(sha, verify=False) as f:
        f.seek(CHUNK_SIZE)
        assert f.read(3) == data[CHUNK_SIZE : CHUNK_SIZE + 3]
    # Only the blob itself is left: no temporary files.
    assert files_under(store.root) == [store.path(sha)]


def test_put_file_missing_is_not_found(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nope.bin") as info:
        store.put_file(tmp_path / "nope.bin")
    assert info.value.field == "path"


def test_identical_content_is_written_once(store: BlobStore) -> None:
    sha = store.put(b"same")
    path = store.path(sha)
    stat = path.stat()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert store.put(b"same") == sha
    assert store.put_stream(io.BytesIO(b"same")) == sha
    after = path.stat()
    assert after.st_ino == stat.st_ino
    assert after.st_mtime_ns == 1_000_000_000  # not rewritten
    assert files_under(store.root) == [path]


def test_corruption_is_detected_on_read(store: BlobStore) -> None:
    sha = store.put(b"the original contribution")
    path = store.path(sha)
    path.write_bytes(b"the 0riginal contribution")
    assert not store.verify(sha)
    with pytest.raises(BlobCorruptedError) as info:
        store.get(sha)
    err = info.value
    assert sha in str(err) and str(path) in str(err)
    assert "re-upload" in (err.fix or "") and "backup" in (err.fix or "")
    assert isinstance(err, StoreError)
    with pytest.raises(BlobCorruptedError), store.open(sha) as f:
        f.read()
    # Putting the original content again repairs the blob.
    assert store.put(b"the original contribution") == sha
    assert store.get(sha) == b"the original contribution"


def test_truncated_blob_is_detected_by_streaming_reader(store: BlobStore) -> None:
    data = os.urandom(CHUNK_SIZE + 10)
    sha = store.put(data)
    with open(store.path(sha), "r+b") as f:
        f.truncate(CHUNK_SIZE)
    with store.open(sha) as f:
        assert len(f.read(CHUNK_SIZE)) == CHUNK_SIZE  # what is there reads fine...
        with pytest.raises(BlobCorruptedError, match=sha):
            f.read()  # ...and reaching the end reports the mismatch


class FailingStream(io.RawIOBase):
    """Yields ``good`` bytes, then raises, like a connection dropped mid-upload."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            raise ConnectionResetError("client went away")
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


def test_failed_write_leaves_no_partial_file(store: BlobStore) -> None:
    before = store.put(b"already there")
    with pytest.raises(ConnectionResetError):
        store.put_stream(FailingStream(CHUNK_SIZE * 2 + 5))
    assert files_under(store.root) == [store.path(before)]
    assert list(store.iter_hashes()) == [before]
    full = hashlib.sha256(b"x" * (CHUNK_SIZE * 2 + 5)).hexdigest()
    assert not store.exists(full)


def test_failed_replace_leaves_no_partial_file(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreError, match="No space left") as info:
        store.put(b"never lands")
    assert "disk space" in (info.value.fix or "")
    assert files_under(store.root) == []


def test_malformed_sha_is_a_validation_error(store: BlobStore) -> None:
    for bad in ["", "abc", "g" * 64, "a" * 63, "../" + "a" * 61, 123]:
        with pytest.raises(ValidationError) as info:
            store.get(bad)  # type: ignore[arg-type]
        assert info.value.field == "sha256"
        assert "64 hex digits" in (info.value.fix or "")
    with pytest.raises(ValidationError):
        store.path("a" * 64 + "/..")


def test_uppercase_sha_is_accepted(store: BlobStore) -> None:
    sha = store.put(b"abc")
    assert store.get(sha.upper()) == b"abc"


def test_missing_blob_is_not_found(store: BlobStore) -> None:
    sha = "ab" * 32
    assert not store.exists(sha)
    for call in (store.get, store.open, store.verify, store.delete, store.size):
        with pytest.raises(NotFoundError, match=sha) as info:
            call(sha)
        assert info.value.http_status == 404
    assert store.delete(sha, missing_ok=True) is False


def test_delete(store: BlobStore) -> None:
    a = store.put(b"a")
    b = store.put(b"b")
    assert store.delete(a) is True
    assert not store.exists(a)
    assert not store.path(a).parent.exists()  # empty fan-out directories are removed
    assert list(store.iter_hashes()) == [b]


def test_iter_hashes_ignores_foreign_files(store: BlobStore) -> None:
    shas = sorted(store.put(bytes([i])) for i in range(20))
    (store.root / "README").write_text("not a blob")
    (store.root / "zz").mkdir()
    stray = store.path(shas[0]).parent / ".tmp-leftover"
    stray.write_bytes(b"partial")
    misplaced = store.root / "00" / "00" / shas[1]
    misplaced.parent.mkdir(parents=True, exist_ok=True)
    misplaced.write_bytes(b"wrong place")
    assert list(store.iter_hashes()) == shas
    assert store.cleanup_temp() == 1
    assert not stray.exists()


def test_unusable_root_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="blob store directory"):
        BlobStore(blocker / "blobs")


def test_put_rejects_text(store: BlobStore) -> None:
    with pytest.raises(ValidationError, match="bytes"):
        store.put("text")  # type: ignore[arg-type]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4096))
def test_round_trip_property(store: BlobStore, data: bytes) -> None:
    # One store for every example: content addressing makes that harmless.
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get(sha) == data
    assert store.put_stream(io.BytesIO(data)) == sha
    with store.open(sha) as f:
        assert f.read() == data
    assert store.verify(sha)
    assert sha in set(store.iter_hashes())
