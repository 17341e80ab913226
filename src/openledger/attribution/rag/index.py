"""The retrieval index of a datanet snapshot: build it, open it, search it.

On disk an index is a folder of three files:

- ``index.faiss`` — a FAISS ``IndexFlatIP`` (exact search) over the chunks' embeddings,
  L2-normalised, so the inner product is the cosine similarity; vector ``i`` is chunk ``i``;
- ``chunks.jsonl`` — one JSON object per chunk, in id order: ``id``, ``record``, ``part``,
  ``contribution``, ``contributor``, ``sha256``, ``text``;
- ``meta.json`` — the format, the snapshot reference and Merkle root given by the caller,
  the embedding model's name and dimension, the chunking parameters, counts, the sha256 of
  the two other files and ``index_hash``: the sha256 of the canonical JSON of everything
  else in meta.json except ``created_at``. Same rows, model and parameters → same hash.

The folder is written in a temporary sibling (each file written atomically) and renamed
into place, so readers see the complete old index or the complete new one. Opening checks
the files against their hashes and the embedding model against the one in use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from openledger.attribution.rag.chunking import Chunk, ChunkingParams, chunk_rows
from openledger.attribution.rag.embed import Embedder, load_embedder, normalise
from openledger.datanets.manifest import canonical_bytes
from openledger.errors import (
    BlobCorruptedError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from openledger.fsutil import replace_dir, write_atomic

FORMAT = "openledger.rag-index"
FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
META_FILE = "meta.json"
COMMAND = "the datanet's retrieval index (method rag)"
REBUILD = f"rebuild {COMMAND}"


@dataclass(frozen=True)
class Retrieved:
    """A chunk returned by a search: its cosine similarity to the query and its rank (1 =
    best)."""

    chunk: Chunk
    score: float
    rank: int


@dataclass
class RagIndex:
    """An open index: meta.json, the chunks, the FAISS index and the embedding model."""

    meta: dict[str, Any]
    chunks: list[Chunk]
    faiss_index: Any
    embedder: Embedder
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def index_hash(self) -> str:
        return str(self.meta["index_hash"])

    @property
    def embedding_model(self) -> str:
        return str(self.meta["embedding"]["model"])

    @property
    def dim(self) -> int:
        return int(self.meta["embedding"]["dim"])

    @property
    def snapshot(self) -> str:
        return str(self.meta["snapshot"])

    def search(self, query: str, k: int) -> list[Retrieved]:
        """The ``k`` chunks most similar to ``query`` (fewer if the index is smaller)."""
        check_k(k)
        if not isinstance(query, str) or not query.strip():
            raise ValidationError(
                f"The retrieval query {query!r} is empty.",
                field="query",
                value=query,
                fix="pass the user's prompt (some non-blank text) as the query.",
            )
        return self.search_vectors(self.embedder.encode([query]), k)[0]

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Retrieved]]:
        """Top-``k`` chunks for each row of ``vectors`` (already embedded queries)."""
        check_k(k)
        queries = normalise(np.atleast_2d(vectors))
        if queries.shape[1] != self.dim:
            raise ValidationError(
                f"Query vectors have dimension {queries.shape[1]}, the index {self.dim}.",
                field="dimension",
                value=queries.shape[1],
                fix=f"embed queries with {self.embedding_model} (the index's model).",
            )
        scores, ids = self.faiss_index.search(queries, min(k, len(self.chunks)))
        return [
            [
                Retrieved(chunk=self.chunks[int(i)], score=float(s), rank=rank)
                for rank, (s, i) in enumerate(zip(row_scores, row_ids, strict=True), start=1)
                if i >= 0
            ]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]


def check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValidationError(
            f"k={k!r} is invalid: the number of chunks to retrieve must be an integer ≥ 1.",
            field="k",
            value=k,
            fix="pass k ≥ 1 (e.g. 4).",
        )


# --------------------------------------------------------------------------- building


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunks_jsonl(chunks: Sequence[Chunk]) -> bytes:
    lines = (json.dumps(c.to_dict(), ensure_ascii=False, sort_keys=True) for c in chunks)
    return "".join(line + "\n" for line in lines).encode("utf-8")


def index_hash(meta: Mapping[str, Any]) -> str:
    """sha256 of meta.json's canonical JSON without ``index_hash`` and ``created_at``."""
    body = {k: v for k, v in meta.items() if k not in ("index_hash", "created_at")}
    return _sha256(canonical_bytes(body))


def build_meta(
    *,
    snapshot: str,
    root: str,
    embedder: Embedder,
    chunking: ChunkingParams,
    chunks: Sequence[Chunk],
    rows: int,
    files: Mapping[str, str],
) -> dict[str, Any]:
    """meta.json for an index of ``chunks`` (pure: no clock, no I/O besides versions)."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "snapshot": snapshot,
        "root": root,
        "embedding": {
            "model": embedder.name,
            "dim": embedder.dim,
            "package": getattr(embedder, "package", None),
        },
        "faiss": {"index": "IndexFlatIP", "metric": "inner_product", "normalised": True},
        "chunking": chunking.to_dict(),
        "rows": rows,
        "chunks": len(chunks),
        "contributions": sorted({c.contribution for c in chunks}),
        "files": dict(files),
    }
    meta["index_hash"] = index_hash(meta)
    return meta


def build_in_memory(
    rows: Sequence[Mapping[str, Any]],
    *,
    snapshot: str,
    root: str,
    embedder: Embedder,
    chunking: ChunkingParams = ChunkingParams(),  # noqa: B008 - frozen dataclass
) -> tuple[RagIndex, dict[str, bytes]]:
    """The index of ``rows`` and the bytes of its files (nothing written)."""
    if not rows:
        raise ValidationError(
            f"Snapshot {snapshot!r} has no rows: there is nothing to index.",
            field="snapshot",
            value=snapshot,
            fix="index a snapshot with approved records (a snapshot freezes the records "
            "validators approved).",
        )
    chunks = chunk_rows(rows, chunking)
    if not chunks:
        raise ValidationError(
            f"Snapshot {snapshot!r} has {len(rows)} row(s) but no text to index.",
            field="snapshot",
            value=snapshot,
            fix="index a snapshot whose records have text, prompts, completions or messages.",
        )
    vectors = normalise(embedder.encode([c.text for c in chunks]))
    if vectors.shape != (len(chunks), embedder.dim):
        raise ValidationError(
            f"The embedding model {embedder.name!r} returned vectors of shape {vectors.shape}, "
            f"expected ({len(chunks)}, {embedder.dim}).",
            field="dimension",
            value=vectors.shape[1] if vectors.ndim == 2 else None,
            fix="use an embedder whose `dim` matches the vectors it returns.",
        )
    index = faiss.IndexFlatIP(embedder.dim)
    index.add(vectors)
    files = {
        INDEX_FILE: faiss.serialize_index(index).tobytes(),
        CHUNKS_FILE: chunks_jsonl(chunks),
    }
    meta = build_meta(
        snapshot=snapshot,
        root=root,
        embedder=embedder,
        chunking=chunking,
        chunks=chunks,
        rows=len(rows),
        files={name: _sha256(data) for name, data in files.items()},
    )
    return RagIndex(meta=meta, chunks=chunks, faiss_index=index, embedder=embedder), files


def build_index(
    rows: Iterable[Mapping[str, Any]],
    out_dir: Path,
    *,
    snapshot: str,
    root: str,
    embedder: Embedder | None = None,
    chunking: ChunkingParams = ChunkingParams(),  # noqa: B008 - frozen dataclass
    overwrite: bool = False,
) -> RagIndex:
    """Chunk, embed and index a snapshot's rows into the folder ``out_dir``.

    ``rows`` are snapshot rows (``SnapshotService.table(...).to_pylist()``); ``snapshot``
    (e.g. ``"ocean@2"``) and ``root`` (its Merkle root) are recorded in meta.json. An
    existing non-empty ``out_dir`` raises :class:`~openledger.errors.ConflictError` unless
    ``overwrite``. ``embedder`` defaults to :func:`load_embedder`.
    """
    out_dir = Path(out_dir).expanduser().resolve()
    _check_target(out_dir, overwrite)
    embedder = embedder or load_embedder()
    index, files = build_in_memory(
        list(rows), snapshot=snapshot, root=root, embedder=embedder, chunking=chunking
    )
    meta = {**index.meta, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        for name, data in files.items():
            write_atomic(tmp / name, data)
        write_atomic(tmp / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        _swap_into_place(tmp, out_dir, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    index.meta, index.path = meta, out_dir
    return index


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not overwrite:
        if out_dir.is_dir() and not any(out_dir.iterdir()):
            return
        raise ConflictError(
            f"Index folder {str(out_dir)!r} already exists; it was left untouched.",
            field="out",
            value=str(out_dir),
            fix="overwrite it, or choose another folder.",
        )


def _swap_into_place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists():
        _check_target(out_dir, overwrite)
    replace_dir(tmp, out_dir)


# --------------------------------------------------------------------------- opening


def read_meta(path: Path) -> dict[str, Any]:
    """meta.json of the index folder ``path``, checked for format."""
    path = Path(path).expanduser()
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise NotFoundError(
            f"No retrieval index at {str(path)!r} ({META_FILE} is missing).",
            field="index",
            value=str(path),
            fix=f"build {COMMAND} first.",
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(
            f"{str(meta_path)!r} is not valid JSON: {exc}.",
            field="index",
            value=str(path),
            fix=f"{REBUILD}.",
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValidationError(
            f"{str(path)!r} is not an OpenLedger retrieval index (format "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}).",
            field="index",
            value=str(path),
            fix=f"pass the folder written by `build_index`, or {REBUILD}.",
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValidationError(
            f"Index {str(path)!r} has format version {meta.get('format_version')!r}; this "
            f"node reads version {FORMAT_VERSION}.",
            field="format_version",
            value=meta.get("format_version"),
            fix=f"{REBUILD}.",
        )
    return meta


def check_embedder(meta: Mapping[str, Any], embedder: Embedder, where: str) -> None:
    """Refuse an index built with another embedding model or dimension than ``embedder``."""
    built = meta.get("embedding") or {}
    if built.get("model") != embedder.name:
        raise ValidationError(
            f"Index {where} was built with the embedding model {built.get('model')!r}, but "
            f"queries are embedded with {embedder.name!r}.",
            field="embedding_model",
            value=built.get("model"),
            fix=f"open it with the embedder {built.get('model')!r}, or {REBUILD} "
            f"(it will use {embedder.name!r}).",
        )
    if built.get("dim") != embedder.dim:
        raise ValidationError(
            f"Index {where} holds {built.get('dim')!r}-dimensional vectors, but "
            f"{embedder.name!r} gives {embedder.dim}.",
            field="dimension",
            value=built.get("dim"),
            fix=f"{REBUILD}.",
        )


def open_index(path: Path, *, embedder: Embedder | None = None) -> RagIndex:
    """Open the index folder ``path`` after checking its files and embedding model.

    ``embedder`` is the model queries will be embedded with (default
    :func:`load_embedder`); an index built with another model or dimension is refused.
    """
    path = Path(path).expanduser().resolve()
    meta = read_meta(path)
    if meta.get("index_hash") != index_hash(meta):
        raise BlobCorruptedError(
            f"{str(path / META_FILE)!r} was changed after the index was built (its "
            "index_hash no longer matches).",
            field="index_hash",
            value=meta.get("index_hash"),
            fix=f"{REBUILD}.",
        )
    embedder = embedder or load_embedder()
    check_embedder(meta, embedder, repr(str(path)))
    data: dict[str, bytes] = {}
    for name in (INDEX_FILE, CHUNKS_FILE):
        file = path / name
        if not file.is_file():
            raise NotFoundError(
                f"Index {str(path)!r} is incomplete: {name} is missing.",
                field="index",
                value=str(path),
                fix=f"{REBUILD}.",
            )
        data[name] = file.read_bytes()
        if _sha256(data[name]) != meta["files"].get(name):
            raise BlobCorruptedError(
                f"{str(file)!r} does not match the sha256 recorded in {META_FILE}.",
                field=name,
                value=_sha256(data[name]),
                fix=f"{REBUILD}.",
            )
    index = faiss.deserialize_index(np.frombuffer(data[INDEX_FILE], dtype=np.uint8))
    lines = data[CHUNKS_FILE].decode("utf-8").splitlines()
    chunks = [Chunk.from_dict(json.loads(line)) for line in lines if line]
    if index.d != meta["embedding"]["dim"] or index.ntotal != len(chunks):
        raise BlobCorruptedError(
            f"Index {str(path)!r} holds {index.ntotal} vectors of dimension {index.d} for "
            f"{len(chunks)} chunks of dimension {meta['embedding']['dim']}.",
            field="index",
            value=str(path),
            fix=f"{REBUILD}.",
        )
    return RagIndex(meta=meta, chunks=chunks, faiss_index=index, embedder=embedder, path=path)
