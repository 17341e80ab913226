"""Binary search of token patterns in one suffix array, vectorised over many patterns.

Pure numpy on a token array ``text`` (uint16/uint32, every document followed by the
separator, the dtype's largest value, so ``text`` ends with one) and its suffix array
``sa``. Patterns never hold the separator, so no match crosses a document boundary, and a
comparison always stops by the end of ``text``. Patterns live in one int64 buffer, each
ended by ``END`` (below every token): pattern j is ``buf[pstart[j]:]`` up to its ``END``.

All patterns advance together: each step of the binary search is one gather of
``sa[mid]`` and one of the tokens there for every pattern still searching. Comparisons
start after the prefix every suffix in the current range shares with the pattern
(Manber-Myers: ``min(lcp(lo - 1), lcp(hi))``), so long matches are not re-read.

``start`` (optional) gives each pattern's first range ``(lo, hi)``: the suffixes that
start with its first token (known from the unigram counts), so the search skips the
steps that would find it.
"""

from __future__ import annotations

import numpy as np

END = -1
_FIRST_WIDTH = 8  # tokens compared per round; doubled for the rows that stay equal
_MAX_WIDTH = 1024


def suffix_patterns(query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The buffer and starts of the patterns ``query[i:]`` for every i."""
    buf = np.empty(query.size + 1, dtype=np.int64)
    buf[:-1] = query
    buf[-1] = END
    return buf, np.arange(query.size, dtype=np.int64)


def slice_patterns(
    query: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The buffer and starts of the patterns ``query[s:s + n]``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    pstart = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    buf = np.full(int(lengths.sum()) + lengths.size, END, dtype=np.int64)
    which = np.repeat(np.arange(lengths.size), lengths)
    inner = np.arange(which.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    buf[pstart[which] + inner] = query[np.asarray(starts, dtype=np.int64)[which] + inner]
    return buf, pstart


def compare(
    text: np.ndarray, buf: np.ndarray, pstart: np.ndarray, sstart: np.ndarray, skip: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compare patterns with the suffixes at ``sstart``; the first ``skip`` tokens are
    known to be equal.

    Returns ``(lcp, sign)``: how many leading tokens the suffix shares with the pattern (at
    most its length) and the sign of suffix minus pattern at the first difference, 0 when
    the suffix starts with the pattern.
    """
    n = skip.size
    lcp = np.empty(n, dtype=np.int64)
    sign = np.empty(n, dtype=np.int64)
    rows = None  # all rows in the first round
    pa, sb, off = pstart + skip, sstart + skip, skip
    width = _FIRST_WIDTH
    while True:
        steps = np.arange(width)
        a = buf.take(pa[:, None] + steps, mode="clip")
        b = text.take(sb[:, None] + steps, mode="clip")
        stop = a != b
        first = stop.argmax(axis=1)
        k = np.arange(first.size)
        done = stop[k, first]
        av, bv = a[k, first], b[k, first].astype(np.int64)
        got_lcp = off + first
        got_sign = np.where(av == END, 0, np.sign(bv - av))
        if rows is None and done.all():
            return got_lcp, got_sign
        if rows is None:
            rows = k
        lcp[rows[done]] = got_lcp[done]
        sign[rows[done]] = got_sign[done]
        more = ~done
        if not more.any():
            return lcp, sign
        rows, pa, sb, off = rows[more], pa[more] + width, sb[more] + width, off[more] + width
        width = min(width * 2, _MAX_WIDTH)


def bounds(
    text: np.ndarray,
    sa: np.ndarray,
    buf: np.ndarray,
    pstart: np.ndarray,
    upper: np.ndarray | bool = False,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary search each pattern in ``sa``.

    Where ``upper`` is false a row finds its lower bound (the first suffix >= the pattern),
    where true its upper bound (the first suffix that does not start with the pattern and
    sorts after it). Returns ``(bound, best)``, ``best`` being the longest prefix of the
    pattern shared by a neighbour of the bound: for a lower bound, the length of the
    pattern's longest prefix that occurs in the text.
    """
    n = pstart.size
    bound = np.zeros(n, dtype=np.int64)
    best = np.zeros(n, dtype=np.int64)
    if n == 0 or sa.size == 0:
        return bound, best
    # go right while sign < 1 (upper: suffix[:m] <= pattern) or sign < 0 (lower)
    limit = np.broadcast_to(np.asarray(upper, dtype=np.int64), (n,))
    rows = np.arange(n)
    if start is None:
        lo = np.zeros(n, dtype=np.int64)
        hi = np.full(n, sa.size, dtype=np.int64)
        lo_lcp = np.zeros(n, dtype=np.int64)
    else:  # every suffix in [lo, hi) shares the first token with its pattern
        lo, hi = start
        lo_lcp = np.ones(n, dtype=np.int64)
        bound[:] = lo  # rows whose first token never occurs: empty range, best 0
        alive = lo < hi
        rows, lo, hi, lo_lcp = rows[alive], lo[alive], hi[alive], lo_lcp[alive]
        pstart, limit = pstart[alive], limit[alive]
        if not rows.size:
            return bound, best
    hi_lcp = lo_lcp.copy()
    while True:
        mid = (lo + hi) >> 1
        lcp, sign = compare(text, buf, pstart, sa[mid], np.minimum(lo_lcp, hi_lcp))
        right = sign < limit
        lo = np.where(right, mid + 1, lo)
        hi = np.where(right, hi, mid)
        lo_lcp = np.where(right, lcp, lo_lcp)
        hi_lcp = np.where(right, hi_lcp, lcp)
        alive = lo < hi
        if alive.all():
            continue
        gone = ~alive
        bound[rows[gone]] = lo[gone]
        best[rows[gone]] = np.maximum(lo_lcp[gone], hi_lcp[gone])
        if not alive.any():
            return bound, best
        rows, lo, hi = rows[alive], lo[alive], hi[alive]
        lo_lcp, hi_lcp = lo_lcp[alive], hi_lcp[alive]
        pstart, limit = pstart[alive], limit[alive]


def longest_prefixes(
    text: np.ndarray,
    sa: np.ndarray,
    query: np.ndarray,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """For every position i of ``query``, the length of the longest prefix of ``query[i:]``
    that occurs in ``text`` (int64, 0 where not even its first token occurs)."""
    if query.size == 0 or sa.size == 0:
        return np.zeros(query.size, dtype=np.int64)
    buf, pstart = suffix_patterns(query)
    _, best = bounds(text, sa, buf, pstart, start=start)
    return best


def ranges(
    text: np.ndarray,
    sa: np.ndarray,
    query: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Suffix-array ranges ``[lo, hi)`` of the suffixes that start with ``query[s:s + n]``
    for each start s and length n (n >= 1)."""
    k = np.asarray(lengths).size
    if k == 0 or sa.size == 0:
        zero = np.zeros(k, dtype=np.int64)
        return zero, zero.copy()
    buf, pstart = slice_patterns(query, starts, lengths)
    pstart2 = np.concatenate([pstart, pstart])
    if start is not None:
        start = (np.concatenate([start[0], start[0]]), np.concatenate([start[1], start[1]]))
    both, _ = bounds(text, sa, buf, pstart2, np.repeat([False, True], k), start)
    return both[:k], both[k:]
