"""Binary search of token patterns in one suffix array, vectorised over many patterns.

Pure numpy on a token array ``text`` (uint16/uint32, documents separated by the separator,
the largest value of the dtype) and its suffix array ``sa``. A pattern is a slice
``query[start:start + length]`` of an int64 query. Past the end of the text a suffix reads
``END`` (below every token), so a suffix that is a prefix of another sorts first, as in the
suffix array. Queries never contain the separator, so no match crosses a document boundary.

All patterns advance together: each step of the binary search is one gather of
``sa[mid]`` and one of the tokens there for every pattern still searching. Comparisons
start after the prefix every suffix in the current range shares with the pattern
(Manber-Myers: ``min(lcp(lo - 1), lcp(hi))``), so long matches are not re-read.
"""

from __future__ import annotations

import numpy as np

END = -1
_FIRST_WIDTH = 16  # tokens compared per round; doubled for the rows that stay equal
_MAX_WIDTH = 1024


def compare(
    text: np.ndarray,
    query: np.ndarray,
    pstart: np.ndarray,
    plen: np.ndarray,
    sstart: np.ndarray,
    skip: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Compare patterns with the suffixes at ``sstart`` over the patterns' lengths.

    Positions before ``skip`` are known to be equal. Returns ``(lcp, sign)``: the number of
    leading tokens the suffix shares with the pattern (at most its length) and the sign of
    suffix minus pattern at the first difference (0 when the suffix starts with the pattern).
    """
    n = plen.size
    lcp = np.empty(n, dtype=np.int64)
    sign = np.zeros(n, dtype=np.int64)
    last_t = text.size - 1
    last_q = max(query.size - 1, 0)
    rows = np.arange(n)
    off = skip.astype(np.int64, copy=True)
    width = _FIRST_WIDTH
    while rows.size:
        o = off[rows]
        steps = o[:, None] + np.arange(width)
        in_pattern = steps < plen[rows, None]
        a = query[np.minimum(pstart[rows, None] + steps, last_q)]
        at = sstart[rows, None] + steps
        b = text[np.minimum(at, last_t)].astype(np.int64)
        b[at > last_t] = END
        stop = (a != b) | ~in_pattern
        done = stop.any(axis=1)
        first = stop.argmax(axis=1)
        if done.any():
            d = np.flatnonzero(done)
            f = first[d]
            r = rows[d]
            lcp[r] = o[d] + f
            sign[r] = np.where(in_pattern[d, f], np.sign(b[d, f] - a[d, f]), 0)
        rows = rows[~done]
        off[rows] += width
        width = min(width * 2, _MAX_WIDTH)
    return lcp, sign


def bounds(
    text: np.ndarray,
    sa: np.ndarray,
    query: np.ndarray,
    pstart: np.ndarray,
    plen: np.ndarray,
    upper: np.ndarray | bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary search each pattern in ``sa``.

    Where ``upper`` is false a row finds its lower bound (the first suffix >= the pattern),
    where true its upper bound (the first suffix that does not start with the pattern and
    sorts after it). Returns ``(bound, best)``, ``best`` being the longest prefix of the
    pattern shared by a neighbour of the bound: for a lower bound, the length of the
    pattern's longest prefix that occurs in the text.
    """
    n = plen.size
    upper_rows = np.broadcast_to(np.asarray(upper, dtype=bool), (n,))
    lo = np.zeros(n, dtype=np.int64)
    hi = np.full(n, sa.size, dtype=np.int64)
    lo_lcp = np.zeros(n, dtype=np.int64)
    hi_lcp = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(lo < hi)
    while rows.size:
        mid = (lo[rows] + hi[rows]) >> 1
        skip = np.minimum(lo_lcp[rows], hi_lcp[rows])
        lcp, sign = compare(text, query, pstart[rows], plen[rows], sa[mid], skip)
        right = np.where(upper_rows[rows], sign <= 0, sign < 0)
        r, m = rows[right], mid[right]
        lo[r] = m + 1
        lo_lcp[r] = lcp[right]
        left = ~right
        r, m = rows[left], mid[left]
        hi[r] = m
        hi_lcp[r] = lcp[left]
        rows = rows[lo[rows] < hi[rows]]
    return lo, np.maximum(lo_lcp, hi_lcp)


def longest_prefixes(text: np.ndarray, sa: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For every position i of ``query``, the length of the longest prefix of ``query[i:]``
    that occurs in ``text`` (int64, 0 where not even its first token occurs)."""
    n = query.size
    if n == 0 or sa.size == 0:
        return np.zeros(n, dtype=np.int64)
    starts = np.arange(n, dtype=np.int64)
    _, best = bounds(text, sa, query, starts, n - starts)
    return best


def ranges(
    text: np.ndarray, sa: np.ndarray, query: np.ndarray, pstart: np.ndarray, plen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Suffix-array ranges ``[lo, hi)`` of the suffixes that start with each pattern."""
    k = plen.size
    if k == 0 or sa.size == 0:
        zero = np.zeros(k, dtype=np.int64)
        return zero, zero.copy()
    both, _ = bounds(
        text,
        sa,
        query,
        np.concatenate([pstart, pstart]),
        np.concatenate([plen, plen]),
        np.repeat([False, True], k),
    )
    return both[:k], both[k:]
