from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from openledger.attribution.quality.metrics import (
    by_contributor,
    canary_hit,
    lds,
    loco_spearman,
    loco_total,
    spearman,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=3, max_size=20))
def test_spearman_matches_scipy_with_ties(pairs: list[tuple[int, int]]) -> None:
    x, y = zip(*pairs, strict=True)
    expected = spearmanr(x, y).statistic
    assert spearman(x, y) == pytest.approx(0.0 if np.isnan(expected) else expected, abs=1e-9)


def test_canary_hit_needs_a_unique_holder_on_top() -> None:
    assert canary_hit({"a": 0.7, "b": 0.3}, ["a"])
    assert canary_hit({"a": 0.4, "d": 0.6}, ["a", "d"])
    assert not canary_hit({"a": 0.5, "b": 0.5}, ["a"])
    assert not canary_hit({}, ["a"]) and not canary_hit({"a": 0.0}, ["a"])


def test_by_contributor_sums_contributions() -> None:
    assert by_contributor({1: 0.2, 2: 0.3, 3: 0.5}, {1: "a", 2: "a", 3: "b"}) == {
        "a": 0.5,
        "b": 0.5,
    }


def test_loco_and_lds_on_known_answers() -> None:
    pred = [{"a": 0.9, "b": 0.1, "c": 0.0}, {"a": 0.0, "b": 0.2, "c": 0.8}]
    inc = [{"a": 3.0, "b": 0.5, "c": 0.1}, {"a": 0.1, "b": 0.3, "c": 2.0}]
    assert loco_spearman(pred, inc) == pytest.approx(1.0)
    assert loco_total(pred, inc) == pytest.approx(spearman([0.9, 0.3, 0.8], [3.1, 0.8, 2.1]))
    subsets = [{1, 2}, {2, 3}, {1, 3}, {1}]
    tau = [{1: 1.0, 2: 0.5, 3: 0.0}]
    actual = np.array([[1.5], [0.5], [1.0], [1.0]]) - 5
    assert lds(tau, subsets, actual) == pytest.approx(spearman([1.5, 0.5, 1.0, 1.0], actual[:, 0]))
    assert lds([{1: -1.0, 2: -0.5, 3: 0.0}], subsets, actual) == pytest.approx(-1.0)
