"""Maximal spans, ranking, the document sampler and the weight formula."""

from __future__ import annotations

import numpy as np
import pytest

from openledger.attribution.spans.trace import (
    Occurrences,
    Span,
    SpanDoc,
    attribution,
    keep_count,
    maximal_spans,
    mix64,
    pick_docs,
    rank_spans,
)


def test_maximal_spans() -> None:
    # position: 0 1 2 3 4 5 6 ; spans [0,3) [1,3) [2,3) - [4,7) [5,7) [6,7)
    lengths = np.array([3, 2, 1, 0, 3, 2, 1])
    starts, ends = maximal_spans(lengths)
    assert starts.tolist() == [0, 4] and ends.tolist() == [3, 7]
    # [0,2) then [1,4) ends later: both maximal; [2,4) is inside [1,4)
    starts, ends = maximal_spans(np.array([2, 3, 2, 1]))
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == [(0, 2), (1, 4)]
    assert maximal_spans(np.zeros(0, dtype=np.int64))[0].size == 0


def test_keep_count() -> None:
    assert keep_count(0.05, 256) == 13
    assert keep_count(0.05, 60) == 3  # 0.05 * 60 is 3.0000000000000004
    assert keep_count(0.05, 20) == 1 and keep_count(0.05, 1) == 1 and keep_count(0.05, 0) == 0


def test_rank_spans_exact_ties_by_start() -> None:
    unigrams = np.array([0, 2, 3, 4, 6, 12])
    total = 100
    query = np.array([1, 4, 2, 3, 5, 5])
    # spans [0,2) = 2*6 = 12, [2,4) = 3*4 = 12 (an exact tie), [4,5) = 12 / 100 (longer
    # spans are rarer per token: 12/100^2 < 12/100), [4,6) = 144/100^2
    order = rank_spans(query, np.array([0, 2, 4, 4]), np.array([2, 4, 5, 6]), unigrams, total)
    assert order == [0, 1, 3, 2]


def test_mix64_is_a_deterministic_scatter() -> None:
    keys = mix64(np.arange(10_000))
    assert np.unique(keys).size == 10_000
    assert keys.dtype == np.uint64
    assert mix64(np.array([5]))[0] == keys[5]


def test_pick_docs_is_the_same_however_segmented() -> None:
    # one segment of 6 documents of 4 tokens + separator, occurrences at every position
    offsets = np.arange(0, 31, 5)
    sa = np.array([p for p in range(30) if p % 5 != 4], dtype=np.int32)
    whole = [Occurrences(sa, 0, sa.size, 0, 0, offsets)]
    picked = pick_docs(whole, 3)
    assert len(picked) == 3 and len({d for d, _ in picked}) == 3
    # the same text as two segments of 3 documents (global positions shifted by 15)
    a = np.array([p for p in range(15) if p % 5 != 4], dtype=np.int32)
    halves = [
        Occurrences(a, 0, a.size, 0, 0, offsets[:4]),
        Occurrences(a, 0, a.size, 15, 3, offsets[:4]),
    ]
    assert pick_docs(halves, 3) == picked
    assert pick_docs(halves, 10) == pick_docs(whole, 10)
    assert len(pick_docs(whole, 10)) == 6
    assert pick_docs([Occurrences(sa, 3, 3, 0, 0, offsets)], 3) == []


def test_weights_split_span_length_over_documents() -> None:
    query = np.arange(30)
    spans = [
        Span(0, 6, 5, -10.0, (SpanDoc(1, 10, "a", 0), SpanDoc(2, 20, "b", 4))),
        Span(10, 14, 1, -9.0, (SpanDoc(3, 20, "b", 7),)),
        Span(20, 25, 0, -8.0, ()),
    ]
    result = attribution(spans, query, params={"min_len": 4}, index_hash="h")
    # contribution 10: 6/2 = 3; contribution 20: 6/2 + 4 = 7
    assert result.weights() == pytest.approx({10: 0.3, 20: 0.7})
    assert [s.score for s in result.shares] == [7.0, 3.0]
    assert [e.record for e in result.shares[0].evidence] == [3, 2]
    assert result.evidence[0].detail["tokens"] == [10, 11, 12, 13]
    assert result.to_dict()["unattributed"] == pytest.approx(0.0)
    assert attribution([], query, params={}, index_hash="h").shares == ()
