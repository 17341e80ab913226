"""Blobs in S3 (fsspec/s3fs) against a real S3 server process (moto's, started here): the
same content-addressed interface as the local store, verified on read; bad URLs and missing
buckets are clear errors; a node with OPENLEDGER_BLOBS_URL keeps its blobs there."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from openledger.errors import BlobCorruptedError, ConfigError, NotFoundError, StoreError
from openledger.node import Node
from openledger.store.blobs import BlobStore
from openledger.store.s3blobs import S3BlobStore, open_blob_store
from tests.conftest import make_settings
from tests.s3 import make_bucket, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    with s3_server() as env:
        make_bucket(env, "ol-blobs")
        yield env


@pytest.fixture
def aws(s3: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in s3.items():
        monkeypatch.setenv(key, value)
    return s3


def test_put_get_and_list_like_the_local_store(aws: dict[str, str], tmp_path: Path) -> None:
    store = S3BlobStore("s3://ol-blobs/node-a")
    local = BlobStore(tmp_path / "blobs")
    data = b"bees communicate with a waggle dance\n"
    sha = store.put(data)
    assert sha == local.put(data) == hashlib.sha256(data).hexdigest()
    assert store.put(data) == sha  # stored once
    assert store.exists(sha) and store.size(sha) == len(data)
    assert store.get(sha) == data and store.open(sha).read() == data
    assert store.open(sha, verify=False).read() == data
    assert store.key(sha) == f"ol-blobs/node-a/{sha[:2]}/{sha[2:4]}/{sha}"
    other = store.put_file(tmp_path / "blobs" / sha[:2] / sha[2:4] / sha)
    assert other == sha and list(store.iter_hashes()) == [sha]
    assert store.verify(sha)
    assert store.delete(sha) and not store.exists(sha)
    with pytest.raises(NotFoundError, match="not in the blob store"):
        store.get(sha)
    assert store.delete(sha, missing_ok=True) is False


def test_a_changed_object_is_caught_on_read_and_repaired_by_put(aws: dict[str, str]) -> None:
    store = S3BlobStore("s3://ol-blobs/node-b")
    sha = store.put(b"original")
    store.fs.pipe_file(store.key(sha), b"tampered")
    with pytest.raises(BlobCorruptedError, match="is corrupted"):
        store.get(sha)
    assert not store.verify(sha)
    assert store.put(b"original") == sha and store.get(sha) == b"original"


def test_bad_urls_and_missing_buckets_are_clear_errors(aws: dict[str, str]) -> None:
    with pytest.raises(StoreError, match="does not exist") as exc:
        S3BlobStore("s3://no-such-bucket/x")
    assert exc.value.field == "OPENLEDGER_BLOBS_URL" and "aws s3 mb" in exc.value.fix
    with pytest.raises(ConfigError, match="not an s3:// URL"):
        S3BlobStore("s3://Bad_Bucket/x")
    with pytest.raises(ConfigError, match="neither s3:// nor file://"):
        open_blob_store("ftp://x", Path("/tmp"))


def test_a_node_keeps_its_blobs_in_the_bucket(aws: dict[str, str], tmp_path: Path) -> None:
    node = Node(make_settings(tmp_path / "home", blobs_url="s3://ol-blobs/shared"))
    twin = Node(make_settings(tmp_path / "twin", blobs_url="s3://ol-blobs/shared"))
    sha = node.blobs.put(b"shared by every node")
    assert isinstance(node.blobs, S3BlobStore) and twin.blobs.get(sha) == b"shared by every node"
    assert not (tmp_path / "home" / "blobs").exists()
