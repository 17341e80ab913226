"""Answering "which contributions did this completion come from?" by token provenance.

A query is two float64 forward passes (with and without the adapter) for the tokens' gains
and a few hundred suffix-array lookups; everything after the gains is exact arithmetic
(:mod:`openledger.attribution.provenance.trace`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from openledger.attribution.provenance.gains import TokenScores, token_scores
from openledger.attribution.provenance.index import METHOD, ProvenanceIndex
from openledger.attribution.provenance.trace import Source, credits, match_positions
from openledger.attribution.types import Attribution, Evidence, Share, preview

EVIDENCE_PER_SHARE = 3


class ProvenanceAttributor:
    """``attribute_ids(prompt, completion)`` for one model; deterministic for given ids."""

    def __init__(
        self,
        index: ProvenanceIndex,
        scores: Callable[[Sequence[int], Sequence[int]], TokenScores],
        *,
        decode: Callable[[list[int]], str] | None = None,
        model_name: str | None = None,
    ) -> None:
        self.index = index
        self.scores = scores
        self.decode = decode
        self.model_name = model_name

    @classmethod
    def for_model(
        cls, index: ProvenanceIndex, model: Any, tokenizer: Any, *, model_name: str | None = None
    ) -> ProvenanceAttributor:
        """With token scores from ``model`` (a PEFT model, float64)."""
        return cls(
            index,
            lambda p, c: token_scores(model, p, c),
            decode=lambda ids: tokenizer.decode(ids),
            model_name=model_name,
        )

    def attribute_ids(
        self,
        prompt: Sequence[int],
        completion: Sequence[int],
        *,
        top: int = 10,
        scores: TokenScores | None = None,
    ) -> Attribution:
        """The attribution of ``completion`` (token ids as generated) after ``prompt``
        (token ids as served, ``bos`` included). ``scores``: the tokens' gains and
        surprisal, when the caller has them already."""
        seq = [int(t) for t in (*prompt, *completion)]
        spans = self.index.spans
        params = self.index.params

        def sources(gram: Sequence[int]) -> tuple[Source, ...]:
            return tuple(Source(r, c, who) for r, c, who in spans.holders(gram))

        matches = match_positions(
            seq,
            spans.longest_matches(seq),
            spans.count,
            sources,
            min_len=params.min_len,
            max_docs=params.max_docs,
        )
        ts = scores if scores is not None else self.scores(prompt, completion)
        earned, attributed = credits(
            seq, matches, len(prompt), ts.gains, ts.surprisal, slack=params.slack_fraction
        )
        shares = []
        evidence: list[Evidence] = []
        for c in earned:
            ev = sorted(
                (
                    self._evidence(c.contribution, record, run, completion)
                    for record, js in c.records.items()
                    for run in _runs(js)
                ),
                key=lambda e: (-e.score, e.detail["start"], e.record or 0),
            )
            shares.append(
                Share(
                    c.contribution,
                    c.contributor,
                    float(c.amount),
                    float(c.amount),
                    tuple(ev[:EVIDENCE_PER_SHARE]),
                )
            )
            evidence.extend(ev)
        evidence.sort(key=lambda e: (-e.score, e.contribution, e.detail["start"], e.record or 0))
        return Attribution(
            method=METHOD,
            params={
                "min_len": params.min_len,
                "max_docs": params.max_docs,
                "slack": params.slack,
                "attributed": float(attributed),
                "completion_tokens": len(completion),
            },
            shares=tuple(shares),
            evidence=tuple(evidence[:top]),
            model=self.model_name,
            index_hash=self.index.index_hash,
        )

    def _evidence(
        self, contribution: int, record: int, run: tuple[int, int], completion: Sequence[int]
    ) -> Evidence:
        """A record's evidence: a run of completion tokens it is a source of, as text."""
        ids = [int(t) for t in completion[run[0] : run[1]]]
        text = self.decode(ids) if self.decode else " ".join(map(str, ids))
        return Evidence(
            contribution=contribution,
            score=(run[1] - run[0]) / max(1, len(completion)),
            preview=preview(text),
            record=record,
            detail={"start": run[0], "end": run[1], "text": text},
        )


def _runs(positions: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted positions as maximal runs [start, end) of consecutive ones."""
    out: list[tuple[int, int]] = []
    for j in sorted(positions):
        if out and out[-1][1] == j:
            out[-1] = (out[-1][0], j + 1)
        else:
            out.append((j, j + 1))
    return out
