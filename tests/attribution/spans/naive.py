"""A naive O(N·L) reference for the span index: plain Python over lists of documents.

Documents are laid out as the index lays them out (each followed by one separator), so
global positions agree; nothing else is shared with the engine except ``mix64``, the
sampler's definition, and ``keep_count`` (ceil).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from openledger.attribution.spans.trace import keep_count, mix64


def occurrences(docs: list[list[int]], pattern: list[int]) -> list[tuple[int, int]]:
    """Every (document ordinal, offset) where ``pattern`` occurs, in order."""
    m = len(pattern)
    if m == 0:
        return []
    return [
        (d, i)
        for d, doc in enumerate(docs)
        for i in range(len(doc) - m + 1)
        if doc[i : i + m] == pattern
    ]


def count(docs: list[list[int]], pattern: list[int]) -> int:
    return len(occurrences(docs, pattern))


def find(
    docs: list[list[int]], ids: list[int], pattern: list[int], limit: int | None = None
) -> list[tuple[int, int]]:
    hits = [(ids[d], i) for d, i in occurrences(docs, pattern)]
    return hits if limit is None else hits[:limit]


def longest(docs: list[list[int]], query: list[int]) -> list[int]:
    out = []
    for i in range(len(query)):
        best = 0
        for doc in docs:
            for j in range(len(doc)):
                k = 0
                while i + k < len(query) and j + k < len(doc) and query[i + k] == doc[j + k]:
                    k += 1
                best = max(best, k)
        out.append(best)
    return out


def trace(
    docs: list[list[int]],
    ids: list[int],
    query: list[int],
    *,
    min_len: int,
    fraction: float,
    max_docs: int,
) -> list[tuple[int, int, int, list[tuple[int, int]]]]:
    """Kept spans as (start, end, count, [(record id, offset)]) by start."""
    lengths = longest(docs, query)
    spans = [(i, i + n) for i, n in enumerate(lengths) if n > 0]
    maximal = [
        (s, e)
        for s, e in spans
        if not any((s2, e2) != (s, e) and s2 <= s and e <= e2 for s2, e2 in spans)
    ]
    maximal = [(s, e) for s, e in maximal if e - s >= min_len]
    total = sum(len(d) for d in docs)
    unigram = {t: sum(d.count(t) for d in docs) for t in set(query)}

    def prob(span: tuple[int, int]) -> Fraction:
        s, e = span
        return Fraction(math.prod(unigram[t] for t in query[s:e]), total ** (e - s))

    kept = sorted(maximal, key=lambda sp: (prob(sp), sp[0]))[: keep_count(fraction, len(query))]
    starts = [0]
    for d in docs:
        starts.append(starts[-1] + len(d) + 1)
    out = []
    for s, e in sorted(kept):
        occ = occurrences(docs, query[s:e])
        keys = [int(mix64(np.array([starts[d] + i]))[0]) for d, i in occ]
        chosen: list[tuple[int, int]] = []
        seen: set[int] = set()
        for _, (d, i) in sorted(zip(keys, occ, strict=True)):
            if d not in seen and len(chosen) < max_docs:
                seen.add(d)
                chosen.append((ids[d], i))
        out.append((s, e, len(occ), chosen))
    return out
