"""The on-disk format: files, meta.json, bytes per token, atomic writes, verification."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openledger.attribution.spans import Document, SpanIndex, build_index, store
from openledger.attribution.spans import indexing as index_module
from openledger.errors import NotFoundError, StoreError


def _docs(n: int, length: int, vocab: int, seed: int = 0, first: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    return [
        Document(first + i, i % 5, f"0x{i % 5}", rng.integers(0, vocab, length, dtype=np.uint16))
        for i in range(n)
    ]


def test_files_and_meta(tmp_path: Path) -> None:
    index = build_index(_docs(30, 50, 1000), tmp_path, vocab_size=1000, tokenizer_id="bpe:1")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["format"] == store.FORMAT and meta["version"] == store.VERSION
    assert meta["tokenizer"] == "bpe:1" and meta["vocab_size"] == 1000
    assert meta["token_dtype"] == "uint16" and meta["separator"] == 65_535
    assert meta["token_code"] == "id * 40504 mod 65535"
    assert meta["tokens"] == 1500 and meta["docs"] == 30 and meta["positions"] == 1530
    assert meta["index_hash"] == index.index_hash and len(index.index_hash) == 64
    (entry,) = meta["segments"]
    assert entry["sa_dtype"] == "int32"
    folder = tmp_path / entry["name"]
    assert set(entry["files"]) == set(store.SEGMENT_FILES)
    for name, info in entry["files"].items():
        assert store.file_sha256(folder / name) == info["sha256"]
        assert (folder / name).stat().st_size == info["size"]
    assert np.load(folder / store.TOKENS).dtype == np.uint16
    assert np.load(folder / store.SA).dtype == np.int32
    assert np.load(folder / store.OFFSETS).tolist() == list(range(0, 1531, 51))
    assert np.load(folder / store.DOCS)[3].tolist() == [3, 3]
    assert json.loads((folder / store.CONTRIBUTORS).read_text())["4"] == "0x4"
    assert np.load(folder / store.UNIGRAMS).sum() == 1500
    assert meta["bytes"] == index.bytes_on_disk() == sum(i["size"] for i in entry["files"].values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_bytes_per_token(tmp_path: Path) -> None:
    # 200 documents of 1,000 tokens: 2 (uint16) + 4 (int32) bytes per position, plus a
    # separator per document, 24 bytes per document and a 16 KB unigram table
    index = build_index(_docs(200, 1000, 2048), tmp_path, vocab_size=2048, tokenizer_id="t")
    positions = index.meta["positions"]
    fixed = 6 * positions + 24 * 200 + 8 + 8 * 2048
    assert fixed <= index.bytes_on_disk() <= fixed + 2000  # + npy headers, contributors
    assert 6.0 < index.bytes_on_disk() / index.tokens < 6.2
    wide = build_index(
        _docs(20, 100, 2048), tmp_path / "wide", vocab_size=100_000, tokenizer_id="t"
    )
    assert wide.meta["token_dtype"] == "uint32"


def test_in_memory_open_and_verify(tmp_path: Path) -> None:
    build_index(_docs(10, 40, 50), tmp_path, vocab_size=50, tokenizer_id="t")
    mapped = SpanIndex.open(tmp_path, verify=True)
    loaded = SpanIndex.open(tmp_path, mmap=False)
    q = _docs(10, 40, 50)[3].tokens[5:25]
    assert loaded.count(q) == mapped.count(q) == 1
    entry = mapped.meta["segments"][0]
    path = tmp_path / entry["name"] / store.TOKENS
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    SpanIndex.open(tmp_path)  # same size: only the sha256 check sees it
    with pytest.raises(StoreError, match="sha256"):
        SpanIndex.open(tmp_path, verify=True)
    path.write_bytes(bytes(raw[:-2]))
    with pytest.raises(StoreError, match="bytes"):
        SpanIndex.open(tmp_path)
    path.unlink()
    with pytest.raises(StoreError, match="missing"):
        SpanIndex.open(tmp_path)


class Crash(Exception):
    pass


def test_crash_before_commit_leaves_no_index(tmp_path: Path, monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(index_module, "write_meta", crash)
    with pytest.raises(Crash):
        build_index(_docs(5, 20, 50), tmp_path, vocab_size=50, tokenizer_id="t")
    with pytest.raises(NotFoundError):
        SpanIndex.open(tmp_path)
    monkeypatch.undo()
    index = build_index(_docs(5, 20, 50), tmp_path, vocab_size=50, tokenizer_id="t")
    assert index.docs == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("seg-")) == ["seg-000001"]


@pytest.mark.parametrize("where", ["sa", "meta"])
def test_crash_while_adding_keeps_the_old_index(tmp_path: Path, monkeypatch, where) -> None:
    index = build_index(_docs(5, 20, 50), tmp_path, vocab_size=50, tokenizer_id="t")
    before = index.index_hash
    real_write_npy = store.write_npy

    def crash_on_sa(path, arr, dtype=None):
        if path.name == store.SA:
            raise Crash
        return real_write_npy(path, arr, dtype)

    def crash(*args, **kwargs):
        raise Crash

    if where == "sa":
        monkeypatch.setattr(store, "write_npy", crash_on_sa)
    else:
        monkeypatch.setattr(index_module, "write_meta", crash)
    with pytest.raises(Crash):
        index.add_segment(_docs(3, 20, 50, seed=1, first=100))
    monkeypatch.undo()
    reopened = SpanIndex.open(tmp_path, verify=True)
    assert reopened.docs == 5 and reopened.index_hash == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    reopened.add_segment(_docs(3, 20, 50, seed=1, first=100))  # cleans up, then writes
    assert reopened.docs == 8 and reopened.segments == 2
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("seg-"))
    assert names == [e["name"] for e in reopened.meta["segments"]]


def test_merge_removes_old_segments(tmp_path: Path) -> None:
    index = build_index(_docs(5, 20, 50), tmp_path, vocab_size=50, tokenizer_id="t")
    index.add_segment(_docs(4, 20, 50, seed=1, first=5))
    index.add_segment(_docs(3, 20, 50, seed=2, first=9))
    assert index.segments == 3
    old = SpanIndex.open(tmp_path)
    generation = index.meta["generation"]
    index.merge()
    assert index.segments == 1 and index.docs == 12 and index.meta["generation"] == generation + 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("seg-")] == ["seg-000004"]
    assert len(index.meta["segments"][0]["parts"]) == 3
    q = _docs(4, 20, 50, seed=1, first=5)[2].tokens[3:15]
    assert index.count(q) == old.count(q) == 1  # an open reader keeps its mapped files
    assert index.find(q) == old.find(q)
    index.merge()  # one segment: nothing to do
    assert index.meta["generation"] == generation + 1
