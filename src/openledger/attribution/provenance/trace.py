"""Token provenance as pure functions: which training documents each generated token comes
from, and what each contribution earns. Integer and rational arithmetic only, so that any
implementation of these steps gets the same weights to the last bit (docs/attribution-verify.md).

1. ``match``: for every position ``t`` of ``prompt + completion`` the *distinctive
   n-gram ending at t*: the shortest ``s[t-n+1 .. t]`` with ``n ≥ min_len`` that occurs in
   the training documents at least once and at most ``max_docs`` times; the documents
   holding it are the position's sources. A position with no such n-gram (nothing in the
   data ends like this, or only n-grams common to many documents) has none.
2. ``worth(t)``: the information token ``t`` carries, its surprisal under the base model
   in sixteenths of a bit (:mod:`~openledger.attribution.provenance.gains`) — a rare name
   counts more than a comma.
3. ``relevance``: a document's is the worth summed over the positions (prompt and
   completion) it is a source of; a contributor's is the worth of the positions any of its
   documents is a source of — how much of the whole exchange it explains.
4. ``priority``: a completion position whose sources belong to several contributors goes to
   one of them: among the contributors whose relevance is at least ``1 − slack`` (4/5) of
   the best one's, the one that contributed first. A contributor that loses every position
   it shares with one earlier contributor to that contributor only restates, on this query,
   what was already there (a paraphrase of someone else's data): it is set aside and the
   positions are decided again without it, until no one is set aside. So copying earns
   nothing, while a later contributor that explains the exchange better (its own facts)
   wins the positions it shares with an earlier one.
5. ``credit``: completion position ``t`` carries its weight ``w_t`` (the fine-tune's gain,
   an integer in 0..``GAIN_SCALE``); it goes to the winner's sources of ``t`` in proportion
   to their relevance. A contribution's weight is its credit over
   ``GAIN_SCALE · |completion|``; the rest is unattributed (paid pro rata to approved
   records).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

GAIN_SCALE = 10**6
DEFAULT_MIN_LEN = 3
DEFAULT_MAX_DOCS = 8
DEFAULT_SLACK = Fraction(1, 5)


@dataclass(frozen=True)
class Source:
    """A training document: its record id, contribution and contributor."""

    record: int
    contribution: int
    contributor: str


@dataclass(frozen=True)
class Match:
    """Position ``end - 1`` of the sequence is explained by ``tokens[start:end]``, which
    occurs ``count`` times, in ``sources``."""

    start: int
    end: int
    count: int
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class Credit:
    """What one contribution earned: ``amount`` over ``scale`` of the completion's weight,
    and the document positions that earned it (record → completion positions)."""

    contribution: int
    contributor: str
    amount: Fraction
    records: Mapping[int, tuple[int, ...]]


def match_positions(
    seq: Sequence[int],
    longest: Sequence[int],
    count: Callable[[Sequence[int]], int],
    sources: Callable[[Sequence[int]], tuple[Source, ...]],
    *,
    min_len: int = DEFAULT_MIN_LEN,
    max_docs: int = DEFAULT_MAX_DOCS,
) -> dict[int, Match]:
    """position → its distinctive n-gram (step 1). ``longest[i]``: the length of the
    longest match of ``seq`` starting at ``i`` in the documents."""
    reach = _longest_ending(longest)
    out: dict[int, Match] = {}
    for t, m in enumerate(reach):
        for n in range(min_len, m + 1):
            gram = seq[t - n + 1 : t + 1]
            c = count(gram)
            if c <= max_docs:
                out[t] = Match(t - n + 1, t + 1, c, sources(gram))
                break
    return out


def _longest_ending(longest: Sequence[int]) -> list[int]:
    """For each position t, the length of the longest match that ends at t. A match at s
    covers s .. s + longest[s] − 1, any part of a match matches, and the ends
    ``s + longest[s]`` never decrease, so it is ``t − s + 1`` for the first s whose match
    reaches past t."""
    ends = [s + int(n) for s, n in enumerate(longest)]
    out = []
    s = 0
    for t in range(len(ends)):
        while s <= t and ends[s] <= t:
            s += 1
        out.append(t - s + 1 if s <= t else 0)
    return out


def credits(
    seq: Sequence[int],
    matches: Mapping[int, Match],
    completion_start: int,
    weights: Sequence[int],
    worth: Sequence[int],
    *,
    slack: Fraction = DEFAULT_SLACK,
) -> tuple[list[Credit], Fraction]:
    """Per-contribution credit (steps 2-5) and the attributed fraction of the completion.

    ``weights[j]``: the integer weight (0..GAIN_SCALE) of completion token ``j`` (position
    ``completion_start + j``); ``worth[t]``: the integer worth (≥ 1) of position ``t``."""
    n_completion = len(seq) - completion_start
    if n_completion <= 0 or len(weights) != n_completion:
        raise ValueError("one weight per completion token")
    if len(worth) != len(seq):
        raise ValueError("one worth per position")
    doc_cover: dict[Source, set[int]] = defaultdict(set)
    who_cover: dict[str, set[int]] = defaultdict(set)
    for t, m in matches.items():
        for src in m.sources:
            doc_cover[src].add(t)
            who_cover[src.contributor].add(t)
    relevance = {src: sum(worth[t] for t in ts) for src, ts in doc_cover.items()}
    standing = {u: sum(worth[t] for t in ts) for u, ts in who_cover.items()}
    first = {u: min(s.contribution for s in doc_cover if s.contributor == u) for u in who_cover}
    rivals = {
        j: sorted({s.contributor for s in matches[completion_start + j].sources})
        for j in range(n_completion)
        if completion_start + j in matches
    }
    active = set(who_cover)
    while True:
        winners = _winners(rivals, active, standing, first, slack)
        gone = _restaters(rivals, active, winners, first)
        if not gone:
            break
        active -= gone
    earned: dict[int, Fraction] = defaultdict(Fraction)
    names: dict[int, str] = {}
    where: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    total = Fraction(0)
    for j, w in enumerate(weights):
        winner = winners.get(j)
        if winner is None or w <= 0:
            continue
        mine = [
            s
            for s in dict.fromkeys(matches[completion_start + j].sources)
            if s.contributor == winner
        ]
        norm = sum(relevance[s] for s in mine)
        for s in mine:
            earned[s.contribution] += Fraction(w * relevance[s], norm)
            names[s.contribution] = s.contributor
            where[s.contribution][s.record].append(j)
        total += w
    scale = GAIN_SCALE * n_completion
    out = [
        Credit(c, names[c], amount / scale, {r: tuple(js) for r, js in where[c].items()})
        for c, amount in earned.items()
    ]
    out.sort(key=lambda x: (-x.amount, x.contribution))
    return out, total / scale


def _winners(
    rivals: Mapping[int, list[str]],
    active: set[str],
    standing: Mapping[str, int],
    first: Mapping[str, int],
    slack: Fraction,
) -> dict[int, str]:
    """Completion position → the contributor it goes to (step 4), among ``active`` ones."""
    out = {}
    for j, names in rivals.items():
        alive = [u for u in names if u in active]
        if not alive:
            continue
        best = max(standing[u] for u in alive)
        keep = slack.denominator - slack.numerator
        close = [u for u in alive if standing[u] * slack.denominator >= keep * best]
        out[j] = min(close, key=lambda u: (first[u], u))
    return out


def _restaters(
    rivals: Mapping[int, list[str]],
    active: set[str],
    winners: Mapping[int, str],
    first: Mapping[str, int],
) -> set[str]:
    """Active contributors that lose every position they share with one earlier active
    contributor to that contributor."""
    shared: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j, names in rivals.items():
        alive = [u for u in names if u in active]
        for u in alive:
            for v in alive:
                if first[v] < first[u]:
                    shared[(u, v)].append(j)
    return {u for (u, v), js in shared.items() if all(winners.get(j) == v for j in js)}
