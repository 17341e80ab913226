"""Vectorised suffix-array search against plain Python on small random texts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.attribution.spans import search
from openledger.attribution.spans.build import suffix_array

SEP = 65_535


def _suffixes(text: list[int]) -> list[list[int]]:
    return [text[i:] for i in range(len(text))]


def _lcp(a: list[int], b: list[int]) -> int:
    k = 0
    while k < len(a) and k < len(b) and a[k] == b[k]:
        k += 1
    return k


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    text=st.lists(st.sampled_from([0, 1, 2, SEP]), min_size=1, max_size=80),
    query=st.lists(st.integers(0, 2), min_size=1, max_size=40),
)
def test_bounds_ranges_and_longest_prefixes(text: list[int], query: list[int]) -> None:
    text = [*text, SEP]  # as laid out: every document ends with the separator
    tokens = np.array(text, dtype=np.uint16)
    sa = suffix_array(tokens)
    q = np.array(query, dtype=np.int64)
    n = len(query)
    starts = np.arange(n, dtype=np.int64)
    lengths = np.array([(i * 7) % (n - i) + 1 for i in range(n)], dtype=np.int64)
    ordered = [_suffixes(text)[i] for i in sa.tolist()]
    counts = np.bincount(tokens[tokens != SEP], minlength=3)
    table = np.concatenate([[0], np.cumsum(counts)])  # raw ids: id order is code order
    for first in (None, table):  # searching the whole array, or from the first token's range
        start = None if first is None else (first[q[starts]], first[q[starts] + 1])
        lo, hi = search.ranges(tokens, sa, q, starts, lengths, start)
        for i in range(n):
            pattern = query[i : i + lengths[i]]
            with_prefix = [k for k, s in enumerate(ordered) if s[: len(pattern)] == pattern]
            assert hi[i] - lo[i] == len(with_prefix)
            if with_prefix:
                assert with_prefix == list(range(lo[i], hi[i]))
            else:  # an empty range sits where the pattern would be inserted
                assert lo[i] == sum(1 for s in ordered if s < pattern)
        best = search.longest_prefixes(tokens, sa, q, start)
        for i in range(n):
            assert best[i] == max(_lcp(query[i:], s) for s in _suffixes(text))


def test_compare_reads_past_the_first_window() -> None:
    text = np.array([1] * 100 + [2] + [1] * 100 + [3, SEP], dtype=np.uint16)
    sa = suffix_array(text)
    q = np.array([1] * 100 + [3], dtype=np.int64)
    assert search.longest_prefixes(text, sa, q)[0] == 101
    lo, hi = search.ranges(text, sa, q, np.array([0]), np.array([101]))
    assert (hi - lo).tolist() == [1]
    assert sa[lo[0]] == 101
