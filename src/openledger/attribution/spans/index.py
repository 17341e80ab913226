"""``SpanIndex``: build, open, extend and merge a span index; count, find and trace."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from openledger.attribution.spans import search
from openledger.attribution.spans.build import (
    CODE_MODULUS,
    CODE_MULTIPLIER,
    Corpus,
    Document,
    check_ids,
    check_vocab,
    encode,
    first_token_ranges,
    layout,
    separator,
    suffix_array,
    token_dtype,
    unigram_counts,
)
from openledger.attribution.spans.store import (
    FORMAT,
    META,
    VERSION,
    SegmentData,
    cleanup,
    ensure_new,
    index_hash,
    read_meta,
    read_segment,
    write_meta,
    write_segment,
    writer_lock,
)
from openledger.attribution.spans.trace import (
    Occurrences,
    Span,
    SpanDoc,
    attribution,
    keep_count,
    log_prob,
    maximal_spans,
    pick_docs,
    rank_spans,
)
from openledger.attribution.types import Attribution
from openledger.errors import StoreError, ValidationError

DEFAULT_MIN_LEN = 8
DEFAULT_FRACTION = 0.05
DEFAULT_MAX_DOCS = 10


class Hit(NamedTuple):
    """One occurrence: the document's record id and the offset in its tokens."""

    doc: int
    position: int


@dataclass
class _Segment:
    name: str
    data: SegmentData
    base: int  # global position of its first token
    doc_base: int  # global ordinal of its first document
    range_lo: np.ndarray  # per token id: its suffixes' range [lo, hi) in sa
    range_hi: np.ndarray


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


def build_index(
    docs: Iterable[Document],
    out_dir: Path | str,
    *,
    vocab_size: int,
    tokenizer_id: str,
    overwrite: bool = False,
) -> SpanIndex:
    """Build a one-segment index of ``docs`` in ``out_dir`` and open it.

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
    return SpanIndex.open(path)


@dataclass(frozen=True)
class _State:
    """One committed version of the index, swapped whole so readers never see half."""

    meta: dict
    segments: tuple[_Segment, ...]
    unigrams: np.ndarray  # int64 (vocab_size): over all segments
    starts: np.ndarray  # int64 (docs + 1): global document starts, then the end
    docs: np.ndarray  # int64 (docs, 2): record id, contribution id
    contributors: dict[int, str]


def _load_state(path: Path, meta: dict, *, mmap: bool, verify: bool) -> _State:
    segments: list[_Segment] = []
    base = doc_base = 0
    for entry in meta["segments"]:
        data = read_segment(path, entry, mmap=mmap, verify=verify)
        lo, hi = first_token_ranges(data.unigrams, data.tokens.dtype)
        segments.append(_Segment(entry["name"], data, base, doc_base, lo, hi))
        base += data.tokens.size
        doc_base += data.docs.shape[0]
    if not segments:
        raise StoreError(
            f"The span index at {path} has no segments.",
            field="path",
            value=str(path),
            fix="Rebuild it from the model's training snapshot (build_index).",
        )
    contributors: dict[int, str] = {}
    for s in segments:
        contributors.update(s.data.contributors)
    return _State(
        meta=meta,
        segments=tuple(segments),
        unigrams=np.sum([s.data.unigrams for s in segments], axis=0),
        starts=np.concatenate(
            [s.data.offsets[:-1] + s.base for s in segments] + [np.array([base], np.int64)]
        ),
        docs=np.concatenate([s.data.docs for s in segments]),
        contributors=contributors,
    )


def _merged(st: _State) -> SegmentData:
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


@dataclass(frozen=True)
class _Query:
    ids: np.ndarray  # int64 token ids
    codes: np.ndarray  # int64, as stored in the token arrays


def _ranges(st: _State, q: _Query, starts: np.ndarray, lengths: np.ndarray) -> list:
    """Per segment, the suffix-array ranges ``(lo, hi)`` of ``q[s:s + n]``."""
    first = q.ids[starts]
    return [
        search.ranges(
            s.data.tokens,
            s.data.sa,
            q.codes,
            starts,
            lengths,
            (s.range_lo[first], s.range_hi[first]),
        )
        for s in st.segments
    ]


def _positions(st: _State, q: _Query) -> np.ndarray:
    """Global positions (int64, unsorted) of every occurrence of the whole query."""
    ranges = _ranges(st, q, np.zeros(1, np.int64), np.array([q.ids.size], np.int64))
    return np.concatenate(
        [
            s.data.sa[int(lo[0]) : int(hi[0])].astype(np.int64) + s.base
            for s, (lo, hi) in zip(st.segments, ranges, strict=True)
        ]
    )


class SpanIndex:
    """A suffix-array index of tokenised documents in one or more segments (see the
    package docstring). Queries search every segment and may run while another thread
    adds or merges segments; writers hold a file lock."""

    def __init__(self, path: Path, meta: dict, *, mmap: bool = True, verify: bool = False):
        self.path = Path(path)
        self._mmap = mmap
        self._lock = threading.RLock()
        self._state = _load_state(self.path, meta, mmap=mmap, verify=verify)

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        expect_tokenizer: str | None = None,
        mmap: bool = True,
        verify: bool = False,
    ) -> SpanIndex:
        """Open the index in ``path``.

        ``expect_tokenizer``: the tokenizer identity the caller uses; ``ValidationError``
        if the index was built with another. ``mmap=False`` reads the arrays into memory;
        ``verify`` checks every file's sha256 (sizes are always checked).
        """
        path = Path(path)
        meta = read_meta(path)
        if expect_tokenizer is not None and meta["tokenizer"] != expect_tokenizer:
            raise ValidationError(
                f"The span index at {path} was built with tokenizer {meta['tokenizer']!r}, "
                f"not {expect_tokenizer!r}; its token ids would not mean the same text.",
                field="tokenizer",
                value=expect_tokenizer,
                fix="Open the index built for this model's tokenizer, or rebuild it "
                "(openledger attribution build MODEL --method spans).",
            )
        return cls(path, meta, mmap=mmap, verify=verify)

    def _reload(self) -> None:
        self._state = _load_state(self.path, read_meta(self.path), mmap=self._mmap, verify=False)

    # ----------------------------------------------------------------- properties

    @property
    def meta(self) -> dict:
        """The committed ``meta.json`` (see ``store``)."""
        return self._state.meta

    @property
    def tokenizer(self) -> str:
        return str(self.meta["tokenizer"])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def index_hash(self) -> str:
        return str(self.meta["index_hash"])

    @property
    def tokens(self) -> int:
        """Indexed tokens (separators not counted)."""
        return int(self.meta["tokens"])

    @property
    def docs(self) -> int:
        return int(self.meta["docs"])

    @property
    def segments(self) -> int:
        return len(self._state.segments)

    def bytes_on_disk(self) -> int:
        """Bytes of the segment files (``meta.json`` not counted)."""
        return int(self.meta["bytes"])

    def __repr__(self) -> str:
        return (
            f"SpanIndex({str(self.path)!r}, tokens={self.tokens}, docs={self.docs}, "
            f"segments={self.segments}, tokenizer={self.tokenizer!r})"
        )

    # ----------------------------------------------------------------- writing

    def add_segment(self, docs: Iterable[Document]) -> None:
        """Index ``docs`` as a new segment, searched with the others from now on."""
        corpus = layout(docs, self.vocab_size)
        with self._lock, writer_lock(self.path):
            meta = read_meta(self.path)  # another writer may have committed since we opened
            cleanup(self.path, {e["name"] for e in meta["segments"]})
            number = int(meta["next_segment"])
            data = _segment_data(corpus, self.vocab_size)
            del corpus
            entry = write_segment(self.path, _segment_name(number), data, None)
            del data
            _commit(self.path, meta, [*meta["segments"], entry], number + 1)
            self._reload()

    def merge(self) -> None:
        """Compact all segments into one (same query results, same index hash)."""
        with self._lock, writer_lock(self.path):
            meta = read_meta(self.path)
            cleanup(self.path, {e["name"] for e in meta["segments"]})
            if len(meta["segments"]) > 1:
                data = _merged(_load_state(self.path, meta, mmap=True, verify=False))
                number = int(meta["next_segment"])
                parts = [p for e in meta["segments"] for p in e["parts"]]
                entry = write_segment(self.path, _segment_name(number), data, parts)
                del data
                _commit(self.path, meta, [entry], number + 1)
            self._reload()

    # ----------------------------------------------------------------- queries

    def _query(self, tokens: Sequence[int] | np.ndarray) -> _Query:
        ids = check_ids(tokens, self.vocab_size, "Query: ").astype(np.int64, copy=False)
        dtype = np.dtype(self.meta["token_dtype"])
        return _Query(ids, encode(ids, dtype).astype(np.int64))

    def count(self, tokens: Sequence[int] | np.ndarray) -> int:
        """How often ``tokens`` occurs in the indexed documents (0 for an empty query)."""
        q = self._query(tokens)
        n = q.ids.size
        if n == 0:
            return 0
        ranges = _ranges(self._state, q, np.zeros(1, np.int64), np.array([n], np.int64))
        return int(sum(int(hi[0] - lo[0]) for lo, hi in ranges))

    def find(self, tokens: Sequence[int] | np.ndarray, limit: int | None = None) -> list[Hit]:
        """The occurrences of ``tokens``, in document order then position (the first
        ``limit`` of them); empty for an empty query."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValidationError(
                f"limit must be a non-negative integer or None, got {limit!r}.",
                field="limit",
                value=limit,
                fix="Pass limit=None for every occurrence.",
            )
        q = self._query(tokens)
        if q.ids.size == 0 or limit == 0:
            return []
        st = self._state
        pos = _positions(st, q)
        if limit is not None and pos.size > limit:
            pos = np.partition(pos, limit - 1)[:limit]
        pos.sort()
        ordinal = np.searchsorted(st.starts, pos, side="right") - 1
        ids = st.docs[ordinal, 0]
        return [Hit(int(d), int(p)) for d, p in zip(ids, pos - st.starts[ordinal], strict=True)]

    def holders(self, tokens: Sequence[int] | np.ndarray) -> list[tuple[int, int, str]]:
        """The distinct documents that hold ``tokens``, as (record id, contribution,
        contributor), by record id; empty for an empty query."""
        q = self._query(tokens)
        if q.ids.size == 0:
            return []
        st = self._state
        ordinals = np.unique(np.searchsorted(st.starts, _positions(st, q), side="right") - 1)
        rows = sorted((int(st.docs[o, 0]), int(st.docs[o, 1])) for o in ordinals)
        return [(r, c, st.contributors.get(c, "")) for r, c in rows]

    def unigram_counts(self) -> np.ndarray:
        """int64 (vocab_size,): how often each token occurs over all documents."""
        return self._state.unigrams

    def longest_matches(self, tokens: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each position of ``tokens``, the length of its longest match in the index
        (int64); a match never crosses a document boundary."""
        return self._longest(self._state, self._query(tokens))

    @staticmethod
    def _longest(st: _State, q: _Query) -> np.ndarray:
        best = np.zeros(q.ids.size, dtype=np.int64)
        for s in st.segments:
            start = (s.range_lo[q.ids], s.range_hi[q.ids])
            found = search.longest_prefixes(s.data.tokens, s.data.sa, q.codes, start)
            np.maximum(best, found, out=best)
        return best

    def trace(
        self,
        tokens: Sequence[int] | np.ndarray,
        *,
        min_len: int = DEFAULT_MIN_LEN,
        fraction: float = DEFAULT_FRACTION,
        max_docs: int = DEFAULT_MAX_DOCS,
    ) -> list[Span]:
        """The kept spans of an output (see ``trace``'s module docstring), by start."""
        _check_trace_params(min_len, fraction, max_docs)
        return self._trace(self._state, self._query(tokens), min_len, fraction, max_docs)

    def _trace(
        self, st: _State, q: _Query, min_len: int, fraction: float, max_docs: int
    ) -> list[Span]:
        total = int(st.meta["tokens"])
        starts, ends = maximal_spans(self._longest(st, q))
        long = ends - starts >= min_len
        starts, ends = starts[long], ends[long]
        order = rank_spans(q.ids, starts, ends, st.unigrams, total)
        chosen = np.sort(np.asarray(order[: keep_count(fraction, q.ids.size)], dtype=np.int64))
        starts, ends = starts[chosen], ends[chosen]
        ranges = _ranges(st, q, starts, ends - starts)
        spans = []
        for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            parts = [
                Occurrences(s.data.sa, int(lo[k]), int(hi[k]), s.base, s.doc_base, s.data.offsets)
                for s, (lo, hi) in zip(st.segments, ranges, strict=True)
            ]
            docs = []
            for ordinal, position in pick_docs(parts, max_docs):
                record, contribution = (int(x) for x in st.docs[ordinal])
                contributor = st.contributors.get(contribution, "")
                docs.append(SpanDoc(record, contribution, contributor, position))
            spans.append(
                Span(
                    start=start,
                    end=end,
                    count=sum(p.hi - p.lo for p in parts),
                    log_prob=log_prob(q.ids, start, end, st.unigrams, total),
                    docs=tuple(docs),
                )
            )
        return spans

    def attribute(
        self,
        tokens: Sequence[int] | np.ndarray,
        *,
        min_len: int = DEFAULT_MIN_LEN,
        fraction: float = DEFAULT_FRACTION,
        max_docs: int = DEFAULT_MAX_DOCS,
        decode: Callable[[list[int]], str] | None = None,
        model: str | None = None,
    ) -> Attribution:
        """Per-contribution weights of an output from its kept spans (method "spans")."""
        _check_trace_params(min_len, fraction, max_docs)
        q = self._query(tokens)
        st = self._state  # spans and hash from the same version of the index
        index_hash = str(st.meta["index_hash"])
        spans = self._trace(st, q, min_len, fraction, max_docs)
        params: dict[str, Any] = {
            "min_len": min_len,
            "fraction": fraction,
            "max_docs": max_docs,
            "index_hash": index_hash,
        }
        return attribution(
            spans,
            q.ids,
            params=params,
            index_hash=index_hash,
            decode=decode,
            model=model,
            notes=(f"{len(spans)} spans kept",),
        )


def _check_trace_params(min_len: int, fraction: float, max_docs: int) -> None:
    if not isinstance(min_len, int) or min_len < 1:
        raise ValidationError(
            f"min_len must be an integer >= 1, got {min_len!r}.",
            field="min_len",
            value=min_len,
            fix=f"Use the default {DEFAULT_MIN_LEN} tokens.",
        )
    if not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise ValidationError(
            f"fraction must be in (0, 1], got {fraction!r}.",
            field="fraction",
            value=fraction,
            fix=f"Use the default {DEFAULT_FRACTION} (OLMoTrace keeps 5% of the output length).",
        )
    if not isinstance(max_docs, int) or max_docs < 1:
        raise ValidationError(
            f"max_docs must be an integer >= 1, got {max_docs!r}.",
            field="max_docs",
            value=max_docs,
            fix=f"Use the default {DEFAULT_MAX_DOCS}.",
        )
