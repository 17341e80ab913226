"""The result every attribution method returns (DESIGN §6).

For one inference: the contributions that earned, each with a weight and the evidence,
plus the method and its parameters. Weights are ≥ 0 and sum to at most 1; what no
contribution earns is ``unattributed`` (the ledger sends it to the model's datanets pro
rata). Sign convention of raw scores: positive = the example made this output more likely.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PREVIEW_CHARS = 160


def query_hash(prompt: Sequence[int], completion: Sequence[int]) -> str:
    """``0x`` + sha256 of ``{"completion":[ids],"prompt":[ids]}`` (compact, sorted keys): what
    a receipt commits to about the tokens that were attributed."""
    body = json.dumps(
        {"completion": [int(t) for t in completion], "prompt": [int(t) for t in prompt]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return "0x" + hashlib.sha256(body.encode()).hexdigest()


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """One line of at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Evidence:
    """Why a contribution earned: one training example, span or retrieved chunk."""

    contribution: int
    score: float
    preview: str
    record: int | None = None
    example_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "contribution": self.contribution,
            "record": self.record,
            "example_id": self.example_id,
            "score": self.score,
            "preview": self.preview,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evidence:
        return cls(
            contribution=int(d["contribution"]),
            score=float(d["score"]),
            preview=str(d["preview"]),
            record=d.get("record"),
            example_id=d.get("example_id"),
            detail=dict(d.get("detail") or {}),
        )


@dataclass(frozen=True)
class Share:
    """One contribution's weight (0..1) and raw score, with its strongest evidence."""

    contribution: int
    contributor: str
    weight: float
    score: float
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "contribution": self.contribution,
            "contributor": self.contributor,
            "weight": self.weight,
            "score": self.score,
            "evidence": [e.to_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Share:
        return cls(
            contribution=int(d["contribution"]),
            contributor=str(d["contributor"]),
            weight=float(d["weight"]),
            score=float(d["score"]),
            evidence=tuple(Evidence.from_dict(e) for e in d.get("evidence") or ()),
        )


@dataclass(frozen=True)
class Attribution:
    """What an inference owes to which contributions, and how that was worked out.

    ``shares`` are sorted by weight (largest first, ties by contribution id);
    ``evidence`` lists the top items overall (examples, spans or chunks);
    ``truncated`` says the input was cut to the model's maximum length (``notes`` says how);
    ``query_hash`` names the exact tokens attributed (:func:`query_hash`).
    """

    method: str
    params: Mapping[str, Any]
    shares: tuple[Share, ...]
    evidence: tuple[Evidence, ...] = ()
    model: str | None = None
    index_hash: str | None = None
    truncated: bool = False
    notes: tuple[str, ...] = ()
    query_hash: str | None = None

    @property
    def attributed(self) -> float:
        return math.fsum(s.weight for s in self.shares)

    @property
    def unattributed(self) -> float:
        return max(0.0, 1.0 - self.attributed)

    def weights(self) -> dict[int, float]:
        """contribution → weight."""
        return {s.contribution: s.weight for s in self.shares}

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": dict(self.params),
            "model": self.model,
            "index_hash": self.index_hash,
            "shares": [s.to_dict() for s in self.shares],
            "unattributed": self.unattributed,
            "evidence": [e.to_dict() for e in self.evidence],
            "truncated": self.truncated,
            "notes": list(self.notes),
            "query_hash": self.query_hash,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attribution:
        return cls(
            method=str(d["method"]),
            params=dict(d.get("params") or {}),
            shares=tuple(Share.from_dict(s) for s in d.get("shares") or ()),
            evidence=tuple(Evidence.from_dict(e) for e in d.get("evidence") or ()),
            model=d.get("model"),
            index_hash=d.get("index_hash"),
            truncated=bool(d.get("truncated", False)),
            notes=tuple(d.get("notes") or ()),
            query_hash=d.get("query_hash"),
        )


def positive_shares(
    scores: Mapping[int, float],
    contributors: Mapping[int, str],
    evidence: Mapping[int, Iterable[Evidence]] | None = None,
) -> tuple[Share, ...]:
    """Weights from per-contribution scores: positive scores normalised to sum to 1;
    contributions with a score ≤ 0 (or NaN) get nothing. Sorted by weight, then id."""
    positive = {c: s for c, s in scores.items() if s > 0 and math.isfinite(s)}
    total = math.fsum(positive.values())
    if total <= 0:
        return ()
    evidence = evidence or {}
    shares = [
        Share(
            contribution=c,
            contributor=contributors.get(c, ""),
            weight=s / total,
            score=s,
            evidence=tuple(evidence.get(c, ())),
        )
        for c, s in positive.items()
    ]
    shares.sort(key=lambda s: (-s.weight, s.contribution))
    return tuple(shares)
