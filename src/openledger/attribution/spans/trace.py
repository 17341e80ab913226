"""From longest matches to kept spans, their documents and per-contribution weights.

Pure functions (no index access); ``SpanIndex.trace`` strings them together:

1. ``maximal_spans``: position i of the output matches ``lengths[i]`` tokens; the span
   ``[i, i + lengths[i])`` is maximal when no span that starts earlier ends as late or
   later. Span ends never decrease (a match minus its first token still matches), so a span
   is maximal exactly when it ends after the previous position's span.
2. spans shorter than ``min_len`` are dropped.
3. ``rank_spans``: the remaining spans are ordered by their unigram probability
   ``prod(count(t) / total)`` over their tokens, lowest first (ties by start), compared
   exactly as integers, and the first ``ceil(fraction * L)`` are kept (L = output length).
4. ``pick_docs``: each kept span's occurrences are ordered by ``mix64`` of their global
   position (the position in the concatenation of all segments, which merging keeps) and
   the documents of the first ``max_docs`` distinct documents in that order are kept: a
   fixed pseudo-random sample, the same however the index is segmented.
5. ``attribution``: each kept span weighs its length in tokens, split equally over its
   documents; a contribution's score is the sum over its documents; weights are the
   scores normalised to sum to 1 (``positive_shares``).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from openledger.attribution.types import Attribution, Evidence, positive_shares, preview

METHOD = "spans"
EVIDENCE_PER_SHARE = 5
EVIDENCE_TOP = 20

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class SpanDoc:
    """A document that holds a span: record id, contribution, contributor, offset in it."""

    doc: int
    contribution: int
    contributor: str
    position: int


@dataclass(frozen=True)
class Span:
    """A kept span ``output[start:end]``: how often it occurs and where."""

    start: int
    end: int
    count: int
    log_prob: float  # natural log of its unigram probability
    docs: tuple[SpanDoc, ...]

    @property
    def length(self) -> int:
        return self.end - self.start


def maximal_spans(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the maximal spans, given each position's longest match length."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.arange(lengths.size, dtype=np.int64) + lengths
    prev = np.concatenate([[0], ends[:-1]])
    keep = (lengths > 0) & (ends > prev)
    starts = np.flatnonzero(keep)
    return starts, ends[starts]


def keep_count(fraction: float, length: int) -> int:
    """``ceil(fraction * length)``, robust to float noise (0.05 * 60 is not quite 3)."""
    return max(0, math.ceil(fraction * length - 1e-9))


def rank_spans(
    query: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    unigrams: np.ndarray,
    total: int,
) -> list[int]:
    """Indices of the spans ordered by unigram probability (lowest first), then start."""
    counts = [int(c) for c in unigrams[query]]
    spans = [(int(s), int(e), math.prod(counts[s:e])) for s, e in zip(starts, ends, strict=True)]

    def cmp(i: int, j: int) -> int:
        (si, ei, pi), (sj, ej, pj) = spans[i], spans[j]
        # p_i / T^li  vs  p_j / T^lj  <=>  p_i * T^lj  vs  p_j * T^li
        li, lj = ei - si, ej - sj
        a, b = (pi * total ** (lj - li), pj) if lj >= li else (pi, pj * total ** (li - lj))
        return (a > b) - (a < b) or (si > sj) - (si < sj)

    return sorted(range(len(spans)), key=functools.cmp_to_key(cmp))


def log_prob(query: np.ndarray, start: int, end: int, unigrams: np.ndarray, total: int) -> float:
    counts = [int(c) for c in unigrams[query[start:end]]]
    return math.log(math.prod(counts)) - (end - start) * math.log(total)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 that scatters nearby positions."""
    z = np.asarray(x).astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class Occurrences:
    """A span's occurrences in one segment: ``sa[lo:hi]`` plus where the segment starts."""

    sa: np.ndarray
    lo: int
    hi: int
    base: int  # global position of the segment's first token
    doc_base: int  # global ordinal of the segment's first document
    offsets: np.ndarray  # the segment's document starts


def pick_docs(parts: Sequence[Occurrences], max_docs: int) -> list[tuple[int, int]]:
    """Up to ``max_docs`` (global document ordinal, position in the document) of a span:
    the first distinct documents in the order of ``mix64(global position)``."""
    total = sum(p.hi - p.lo for p in parts)
    if total == 0 or max_docs <= 0:
        return []
    m = 4 * max_docs
    while True:
        keys, docs, offs = [], [], []
        for p in parts:
            if p.hi == p.lo:
                continue
            pos = p.sa[p.lo : p.hi].astype(np.int64)
            key = mix64(pos + p.base)
            if key.size > m:
                sel = np.argpartition(key, m - 1)[:m]
                pos, key = pos[sel], key[sel]
            local = np.searchsorted(p.offsets, pos, side="right") - 1
            keys.append(key)
            docs.append(local + p.doc_base)
            offs.append(pos - p.offsets[local])
        key = np.concatenate(keys)
        order = np.argsort(key, kind="stable")[:m]  # past m, a segment's keys may be missing
        doc = np.concatenate(docs)[order]
        off = np.concatenate(offs)[order]
        _, first = np.unique(doc, return_index=True)
        if first.size >= max_docs or m >= total:
            first = np.sort(first)[:max_docs]
            return [(int(doc[i]), int(off[i])) for i in first]
        m *= 4


def attribution(
    spans: Sequence[Span],
    query: np.ndarray,
    *,
    params: Mapping[str, Any],
    index_hash: str,
    decode: Callable[[list[int]], str] | None = None,
    model: str | None = None,
    notes: Sequence[str] = (),
) -> Attribution:
    """Per-contribution weights from the kept spans (see the module docstring)."""
    scores: dict[int, float] = defaultdict(float)
    contributors: dict[int, str] = {}
    evidence: dict[int, list[Evidence]] = defaultdict(list)
    for span in spans:
        if not span.docs:
            continue
        ids = [int(t) for t in query[span.start : span.end]]
        text = decode(ids) if decode is not None else None
        shown = preview(text if text is not None else " ".join(map(str, ids)))
        share = span.length / len(span.docs)
        for d in span.docs:
            scores[d.contribution] += share
            contributors[d.contribution] = d.contributor
            detail: dict[str, Any] = {
                "start": span.start,
                "end": span.end,
                "doc": d.doc,
                "position": d.position,
                "count": span.count,
            }
            if text is not None:
                detail["text"] = text
            else:
                detail["tokens"] = ids
            evidence[d.contribution].append(
                Evidence(
                    contribution=d.contribution,
                    score=share,
                    preview=shown,
                    record=d.doc,
                    detail=detail,
                )
            )
    for items in evidence.values():
        items.sort(key=lambda e: (-e.score, e.detail["start"], e.record))
    top = sorted(
        (e for items in evidence.values() for e in items),
        key=lambda e: (-e.score, e.detail["start"], e.contribution, e.record),
    )[:EVIDENCE_TOP]
    shares = positive_shares(
        scores, contributors, {c: items[:EVIDENCE_PER_SHARE] for c, items in evidence.items()}
    )
    return Attribution(
        method=METHOD,
        params=dict(params),
        shares=shares,
        evidence=tuple(top),
        model=model,
        index_hash=index_hash,
        notes=tuple(notes),
    )
