"""Building a segment: layout with separators, token dtypes, suffix arrays, unigrams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.attribution.spans.build import (
    Document,
    code_table,
    encode,
    first_token_ranges,
    layout,
    separator,
    suffix_array,
    token_dtype,
    unigram_counts,
)
from openledger.errors import ValidationError


def _naive_sa(tokens: np.ndarray) -> list[int]:
    values = tokens.tolist()
    return sorted(range(len(values)), key=lambda i: values[i:])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    values=st.lists(st.integers(0, 5), max_size=60),
    high=st.sampled_from([0, 255, 256, 65_535, 65_536, 4_294_967_295]),
)
def test_suffix_array_sorts_token_sequences(values: list[int], high: int) -> None:
    # a few large ids check that bytes are compared most significant first
    values = [high if v == 5 else v for v in values]
    dtype = np.uint16 if high < 65_536 else np.uint32
    tokens = np.array(values, dtype=dtype)
    before = tokens.copy()
    sa = suffix_array(tokens)
    assert sa.tolist() == _naive_sa(tokens)
    assert sa.dtype == np.int32
    assert np.array_equal(tokens, before)  # swapped back after the sort


def test_suffix_array_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError):
        suffix_array(np.zeros(3, dtype=np.int64))
    assert suffix_array(np.zeros(0, dtype=np.uint16)).size == 0


def test_token_dtype_and_separator() -> None:
    assert token_dtype(2048) == np.uint16
    assert token_dtype(65_535) == np.uint16
    assert token_dtype(65_536) == np.uint32
    assert separator(np.dtype(np.uint16)) == 65_535
    assert separator(np.dtype(np.uint32)) == 4_294_967_295


def test_layout_puts_a_separator_after_every_document() -> None:
    docs = [
        Document(7, 1, "a", [1, 2]),
        Document(8, 2, "b", []),
        Document(9, 1, "a", np.array([3], dtype=np.uint8)),
    ]
    corpus = layout(docs, 10)
    assert corpus.tokens.dtype == np.uint16
    code = code_table(10, np.dtype(np.uint16)).tolist()
    assert corpus.tokens.tolist() == [code[1], code[2], 65_535, 65_535, code[3], 65_535]
    assert corpus.offsets.tolist() == [0, 3, 4, 6]
    assert corpus.docs.tolist() == [[7, 1], [8, 2], [9, 1]]
    assert corpus.contributors == {1: "a", 2: "b"}
    assert unigram_counts(corpus.tokens, 10).tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    wide = layout([Document(1, 1, "a", [70_000, 3])], 100_000)
    assert wide.tokens.tolist() == [70_000, 3, 4_294_967_295]  # uint32: the ids themselves
    assert unigram_counts(wide.tokens, 100_000)[[3, 70_000]].tolist() == [1, 1]


def test_token_codes_are_a_bijection_that_avoids_the_separator() -> None:
    codes = code_table(65_535, np.dtype(np.uint16))
    assert np.unique(codes).size == 65_535 and codes.max() < 65_535
    assert encode(np.array([0, 1, 2]), np.dtype(np.uint16)).tolist() == [0, 40_504, 15_473]


def test_first_token_ranges_follow_code_order() -> None:
    docs = [Document(0, 0, "a", [0, 1, 2, 1, 3, 3, 3])]
    corpus = layout(docs, 5)
    sa = suffix_array(corpus.tokens)
    unigrams = unigram_counts(corpus.tokens, 5)
    lo, hi = first_token_ranges(unigrams, corpus.tokens.dtype)
    code = code_table(5, corpus.tokens.dtype)
    for t in range(5):
        starting = [k for k, p in enumerate(sa.tolist()) if corpus.tokens[p] == code[t]]
        assert list(range(lo[t], hi[t])) == starting


def test_layout_errors() -> None:
    with pytest.raises(ValidationError) as err:
        layout([], 10)
    assert (err.value.field, err.value.value) == ("docs", 0)
    with pytest.raises(ValidationError) as err:
        layout([Document(1, 1, "a", [[1, 2]])], 10)
    assert err.value.field == "tokens"
    with pytest.raises(ValidationError) as err:
        layout([Document(1, 1, "a", [1, 10])], 10)
    assert err.value.value == 10 and "0..9" in err.value.message
    with pytest.raises(ValidationError) as err:
        layout([Document(1, 1, "a", np.array([1, 65_535], dtype=np.uint16))], 10)
    assert err.value.value == 65_535
    with pytest.raises(ValidationError) as err:
        layout([Document(1, 1, "a", [3, -2])], 10)
    assert err.value.value == -2
