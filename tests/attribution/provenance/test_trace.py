"""Token provenance's exact arithmetic, on hand-made documents (no model)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from openledger.attribution.provenance.gains import gain, surprisal
from openledger.attribution.provenance.trace import (
    GAIN_SCALE,
    Source,
    _longest_ending,
    credits,
    match_positions,
)

FULL = GAIN_SCALE


class Docs:
    """Documents by brute force: counts, holders and longest matches."""

    def __init__(self, docs: list[tuple[Source, list[int]]]) -> None:
        self.docs = docs

    def count(self, gram: Sequence[int]) -> int:
        n = len(gram)
        return sum(
            1
            for _, toks in self.docs
            for i in range(len(toks) - n + 1)
            if toks[i : i + n] == list(gram)
        )

    def sources(self, gram: Sequence[int]) -> tuple[Source, ...]:
        n = len(gram)
        return tuple(
            src
            for src, toks in self.docs
            if any(toks[i : i + n] == list(gram) for i in range(len(toks) - n + 1))
        )

    def longest(self, seq: Sequence[int]) -> list[int]:
        out = []
        for i in range(len(seq)):
            n = 0
            while i + n < len(seq) and self.count(seq[i : i + n + 1]) > 0:
                n += 1
            out.append(n)
        return out

    def attribute(self, prompt: list[int], completion: list[int], weights=None, worth=None, **kw):
        seq = prompt + completion
        kw.setdefault("min_len", 2)  # these documents are short: bigrams are distinctive
        matches = match_positions(seq, self.longest(seq), self.count, self.sources, **kw)
        w = weights or [FULL] * len(completion)
        return credits(seq, matches, len(prompt), w, worth or [16] * len(seq))


OWNER = Source(1, 1, "owner")
OWNER_NOTE = Source(2, 2, "owner")
NEIGHBOUR = Source(3, 3, "neighbour")
SYBIL = Source(9, 9, "sybil")
# tokens: 1 = "?", 10-12 = a disease name, 20-21 = a drug, 30-31 = a sign, 40 = "the", 50 = "."
OWNER_DOCS = [
    (OWNER, [5, 30, 31, 1, 10, 11, 12, 40, 20, 21, 50]),
    (OWNER_NOTE, [10, 11, 12, 30, 31, 20, 21]),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=30))
def test_longest_ending_is_the_longest_match_ending_at_each_position(longest: list[int]) -> None:
    ends = [s + n for s, n in enumerate(longest)]
    # make the input valid: a match minus its first token still matches, so ends never drop
    fixed = []
    reach = 0
    for s, _ in enumerate(longest):
        reach = max(reach, ends[s], s)
        fixed.append(reach - s)
    got = _longest_ending(fixed)
    for t in range(len(fixed)):
        want = max((t - s + 1 for s in range(t + 1) if s + fixed[s] > t), default=0)
        assert got[t] == want


def test_a_fact_goes_to_its_owner_and_what_nobody_wrote_stays_unattributed() -> None:
    docs = Docs(OWNER_DOCS + [(NEIGHBOUR, [7, 7, 8, 8])])
    earned, attributed = docs.attribute([30, 31, 1], [10, 11, 12, 40, 20, 21, 60, 61])
    assert [c.contributor for c in earned] == ["owner", "owner"]
    # 6 of 8 tokens end a bigram of the owner's; unknown tokens 60, 61 stay unattributed
    assert attributed == Fraction(6, 8)
    assert sum(c.amount for c in earned) == attributed
    # a token after a context nobody wrote is not explained by its unigram alone
    assert docs.attribute([30, 31, 1], [10, 11, 12, 20, 21])[1] == Fraction(4, 5)
    assert all(isinstance(c.amount, Fraction) for c in earned)


def test_weights_are_the_gains_and_zero_gain_earns_nothing() -> None:
    docs = Docs(OWNER_DOCS)
    half = FULL // 2
    earned, attributed = docs.attribute([30, 31, 1], [10, 11, 12], weights=[half, 0, FULL])
    assert attributed == Fraction(half + FULL, 3 * FULL)
    assert sum(c.amount for c in earned) == attributed


def test_a_later_paraphrase_of_someone_elses_facts_earns_nothing() -> None:
    # the sybil restates the owner's name, sign and drug in its own words (token 70 is its
    # own wording, which also ends the query): it loses every shared position to the owner
    sybil = (SYBIL, [70, 10, 11, 12, 71, 30, 31, 72, 20, 21, 50])
    with_copy = Docs(OWNER_DOCS + [sybil]).attribute([30, 31, 1], [10, 11, 12, 20, 21, 50])
    without = Docs(OWNER_DOCS).attribute([30, 31, 1], [10, 11, 12, 20, 21, 50])
    assert "sybil" not in {c.contributor for c in with_copy[0]}
    assert with_copy == without


def test_a_later_contributor_that_explains_more_wins_what_it_shares() -> None:
    # the neighbour came first and names the disease with a region (80, 81); the owner
    # (later) states sign, name and drug: a question about the sign goes to the owner
    neighbour = (Source(1, 1, "neighbour"), [10, 11, 12, 80, 81])
    owner = (Source(5, 5, "owner"), [30, 31, 1, 10, 11, 12, 20, 21])
    docs = Docs([neighbour, owner])
    earned, _ = docs.attribute([30, 31, 1], [10, 11, 12])
    assert [c.contributor for c in earned] == ["owner"]
    # a question about the region goes to the neighbour, though the owner names the disease
    earned, _ = docs.attribute([10, 11, 12, 1], [80, 81])
    assert [c.contributor for c in earned] == ["neighbour"]


def test_common_ngrams_are_not_anyones() -> None:
    many = [(Source(i, i, f"c{i}"), [40, 50]) for i in range(1, 12)]
    earned, attributed = Docs(many).attribute([1], [40, 50], max_docs=8)
    assert earned == [] and attributed == 0


def test_credit_is_split_by_relevance_within_a_contributor() -> None:
    a, b = Source(1, 1, "x"), Source(2, 2, "x")
    docs = Docs([(a, [30, 31, 10, 11]), (b, [10, 11])])
    earned, attributed = docs.attribute([30, 31], [10, 11])
    by = {c.contribution: c.amount for c in earned}
    assert attributed == 1 and sum(by.values()) == 1 and by[1] > by[2] > 0


def test_gain_and_surprisal_are_integers() -> None:
    assert gain(-1.0, -1.0) == 0 and gain(-2.0, -1.0) == 0
    assert gain(-0.1, -2.4) == round(FULL * (1 - 2.718281828459045 ** (-2.3)))
    assert surprisal(0.0) == 1 and surprisal(-0.6931471805599453) == 16
