"""Querying a span index: ``SpanIndex`` opens one and counts, finds and traces token
sequences over every segment; writes go through ``indexing`` (``build_index``,
``add_segment``, ``merge``) and the index reloads what they committed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from openledger.attribution.spans import indexing, search
from openledger.attribution.spans.build import Document, check_ids, encode
from openledger.attribution.spans.state import State, load_state
from openledger.attribution.spans.store import read_meta
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
from openledger.errors import ValidationError

DEFAULT_MIN_LEN = 8
DEFAULT_FRACTION = 0.05
DEFAULT_MAX_DOCS = 10


class Hit(NamedTuple):
    """One occurrence: the document's record id and the offset in its tokens."""

    doc: int
    position: int


def build_index(
    docs: Iterable[Document],
    out_dir: Path | str,
    *,
    vocab_size: int,
    tokenizer_id: str,
    overwrite: bool = False,
) -> SpanIndex:
    """Build a one-segment index of ``docs`` in ``out_dir`` (``indexing.write_index``) and
    open it.

    ``ValidationError`` for no documents, a bad vocabulary size or token id;
    ``ConflictError`` if ``out_dir`` already holds an index and not ``overwrite``.
    """
    indexing.write_index(
        docs, out_dir, vocab_size=vocab_size, tokenizer_id=tokenizer_id, overwrite=overwrite
    )
    return SpanIndex.open(out_dir)


@dataclass(frozen=True)
class _Query:
    ids: np.ndarray  # int64 token ids
    codes: np.ndarray  # int64, as stored in the token arrays


def _ranges(st: State, q: _Query, starts: np.ndarray, lengths: np.ndarray) -> list:
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


def _positions(st: State, q: _Query) -> np.ndarray:
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
        self._state = load_state(self.path, meta, mmap=mmap, verify=verify)

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
                fix="Open the index built for this model's tokenizer, or rebuild the "
                "model's span index.",
            )
        return cls(path, meta, mmap=mmap, verify=verify)

    def _reload(self) -> None:
        self._state = load_state(self.path, read_meta(self.path), mmap=self._mmap, verify=False)

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
        with self._lock:
            indexing.add_segment(self.path, docs, self.vocab_size)
            self._reload()

    def merge(self) -> None:
        """Compact all segments into one (same query results, same index hash)."""
        with self._lock:
            indexing.merge(self.path)
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
    def _longest(st: State, q: _Query) -> np.ndarray:
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
        self, st: State, q: _Query, min_len: int, fraction: float, max_docs: int
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
