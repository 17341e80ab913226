"""Writing a span index: build one from documents, add a segment, merge the segments.

Each write holds the index's file lock (``store.writer_lock``), writes its segment files,
then commits by replacing ``meta.json`` (``_commit``) and removes what no committed version
names; a crash before the commit leaves the index as it was. Queries are ``engine``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from openledger.attribution.spans.build import (
    CODE_MODULUS,
    CODE_MULTIPLIER,
    Corpus,
    Document,
    check_vocab,
    layout,
    separator,
    suffix_array,
    token_dtype,
    unigram_counts,
)
from openledger.attribution.spans.state import State, load_state
from openledger.attribution.spans.store import (
    FORMAT,
    META,
    VERSION,
    SegmentData,
    cleanup,
    ensure_new,
    index_hash,
    read_meta,
    write_meta,
    write_segment,
    writer_lock,
)
from openledger.errors import ValidationError


def _segment_name(number: int) -> str:
    return f"seg-{number:06d}"


def _check_tokenizer(tokenizer_id: str) -> str:
    if not isinstance(tokenizer_id, str) or not tokenizer_id.strip():
        raise ValidationError(
            f"tokenizer_id must be a non-empty string, got {tokenizer_id!r}.",
            field="tokenizer_id",
            value=tokenizer_id,
            fix="Pass the tokenizer's fingerprint (for example the sha256 of tokenizer.json).",
        )
    return tokenizer_id


def _segment_data(corpus: Corpus, vocab_size: int) -> SegmentData:
    unigrams = unigram_counts(corpus.tokens, vocab_size)
    return SegmentData(
        tokens=corpus.tokens,
        sa=suffix_array(corpus.tokens),
        offsets=corpus.offsets,
        docs=corpus.docs,
        contributors=corpus.contributors,
        unigrams=unigrams,
    )


def _commit(path: Path, base: dict, entries: list[dict], next_segment: int) -> None:
    """Write ``meta.json`` naming ``entries`` (the commit point), then drop stale files."""
    parts = [p for e in entries for p in e["parts"]]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": base["tokenizer"],
        "vocab_size": base["vocab_size"],
        "token_dtype": base["token_dtype"],
        "separator": base["separator"],
        "token_code": base["token_code"],
        "tokens": sum(e["tokens"] for e in entries),
        "positions": sum(e["positions"] for e in entries),
        "docs": sum(e["docs"] for e in entries),
        "bytes": sum(f["size"] for e in entries for f in e["files"].values()),
        "segments": entries,
        "next_segment": next_segment,
        "generation": int(base.get("generation", 0)) + 1,
        "index_hash": index_hash(base["tokenizer"], base["vocab_size"], parts),
    }
    write_meta(path, meta)
    cleanup(path, {e["name"] for e in entries})


def write_index(
    docs: Iterable[Document],
    out_dir: Path | str,
    *,
    vocab_size: int,
    tokenizer_id: str,
    overwrite: bool = False,
) -> None:
    """Build a one-segment index of ``docs`` in ``out_dir``.

    ``ValidationError`` for no documents, a bad vocabulary size or token id;
    ``ConflictError`` if ``out_dir`` already holds an index and not ``overwrite``.
    """
    vocab_size = check_vocab(vocab_size)
    tokenizer_id = _check_tokenizer(tokenizer_id)
    path = Path(out_dir)
    ensure_new(path, overwrite)
    corpus = layout(docs, vocab_size)
    path.mkdir(parents=True, exist_ok=True)
    with writer_lock(path):
        ensure_new(path, overwrite)
        old = read_meta(path) if (path / META).exists() else {}
        cleanup(path, {e["name"] for e in old.get("segments", [])})
        number = int(old.get("next_segment", 1))
        dtype = token_dtype(vocab_size)
        base = {
            "tokenizer": tokenizer_id,
            "vocab_size": vocab_size,
            "token_dtype": str(dtype),
            "separator": separator(dtype),
            "token_code": (
                f"id * {CODE_MULTIPLIER} mod {CODE_MODULUS}" if dtype.itemsize == 2 else "id"
            ),
            "generation": old.get("generation", 0),
        }
        entry = write_segment(path, _segment_name(number), _segment_data(corpus, vocab_size), None)
        del corpus
        _commit(path, base, [entry], number + 1)


def add_segment(path: Path, docs: Iterable[Document], vocab_size: int) -> None:
    """Index ``docs`` as a new segment of the index in ``path``."""
    corpus = layout(docs, vocab_size)
    with writer_lock(path):
        meta = read_meta(path)  # another writer may have committed since the index was opened
        cleanup(path, {e["name"] for e in meta["segments"]})
        number = int(meta["next_segment"])
        data = _segment_data(corpus, vocab_size)
        del corpus
        entry = write_segment(path, _segment_name(number), data, None)
        del data
        _commit(path, meta, [*meta["segments"], entry], number + 1)


def merge(path: Path) -> None:
    """Compact all segments of the index in ``path`` into one (same query results, same
    index hash)."""
    with writer_lock(path):
        meta = read_meta(path)
        cleanup(path, {e["name"] for e in meta["segments"]})
        if len(meta["segments"]) > 1:
            data = _merged(load_state(path, meta, mmap=True, verify=False))
            number = int(meta["next_segment"])
            parts = [p for e in meta["segments"] for p in e["parts"]]
            entry = write_segment(path, _segment_name(number), data, parts)
            del data
            _commit(path, meta, [entry], number + 1)


def _merged(st: State) -> SegmentData:
    """All segments of ``st`` as one: tokens concatenated, so global positions stay."""
    segs = st.segments
    tokens = np.empty(int(st.starts[-1]), dtype=segs[0].data.tokens.dtype)
    for s in segs:
        tokens[s.base : s.base + s.data.tokens.size] = s.data.tokens
    return SegmentData(
        tokens=tokens,
        sa=suffix_array(tokens),
        offsets=st.starts.copy(),
        docs=st.docs.copy(),
        contributors=dict(st.contributors),
        unigrams=st.unigrams.copy(),
    )
