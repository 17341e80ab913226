"""A model's attribution policy: which methods credit its inferences, and how much each.

Written ``provenance`` (the default for Model Factory models), ``gradient``, ``spans``,
``rag`` or a weighted mix such as ``provenance:0.7,gradient:0.3``
(weights are normalised to sum to 1). The policy is part of the model's registry record (in
its card, whose hash is on chain). A mixed attribution gives contribution c the weight
``Σ_m w_m · weight_m(c)``; what a method leaves unattributed stays unattributed in
proportion to that method's weight.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from openledger.attribution.types import Attribution, Evidence, Share
from openledger.errors import ValidationError
from openledger.factory.publish import DEFAULT_POLICY

METHODS = ("provenance", "gradient", "spans", "rag")


def parse_policy(
    text: str | Mapping[str, float] | None, field: str = "attribution"
) -> dict[str, float]:
    """``"gradient:0.7,spans:0.3"`` (or a mapping) → {method: weight}, weights summing to 1."""
    if text is None:
        return dict(DEFAULT_POLICY)
    if isinstance(text, Mapping):
        items = [(str(k), v) for k, v in text.items()]
    else:
        items = []
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            name, _, weight = part.partition(":")
            items.append((name.strip(), weight.strip() or "1"))
    policy: dict[str, float] = {}
    for name, weight in items:
        if name not in METHODS:
            raise ValidationError(
                f"Attribution method {name!r} is not known.",
                field=field,
                value=str(text),
                fix=f"use {', '.join(METHODS)} or a mix such as gradient:0.7,spans:0.3.",
            )
        try:
            w = float(weight)
        except (TypeError, ValueError):
            w = math.nan
        if not (w > 0 and math.isfinite(w)):
            raise ValidationError(
                f"The weight of {name!r} in the attribution policy is {weight!r}.",
                field=field,
                value=str(text),
                fix="give each method a positive weight.",
            )
        policy[name] = policy.get(name, 0.0) + w
    if not policy:
        raise ValidationError(
            "The attribution policy is empty.",
            field=field,
            value=str(text),
            fix="name at least one method, e.g. gradient.",
        )
    total = math.fsum(policy.values())
    return {m: w / total for m, w in sorted(policy.items())}


def format_policy(policy: Mapping[str, float]) -> str:
    return ",".join(f"{m}:{w:g}" for m, w in sorted(policy.items()))


def mix(
    parts: Sequence[tuple[float, Attribution]],
    *,
    model: str | None = None,
    index_hash: str | None = None,
    top: int = 10,
) -> Attribution:
    """One attribution from several methods' results, weighted by the policy."""
    if len(parts) == 1 and math.isclose(parts[0][0], 1.0):
        return parts[0][1]
    weights: dict[int, float] = {}
    contributors: dict[int, str] = {}
    evidence: dict[int, list[Evidence]] = {}
    for w, a in parts:
        for s in a.shares:
            weights[s.contribution] = weights.get(s.contribution, 0.0) + w * s.weight
            contributors[s.contribution] = s.contributor
            evidence.setdefault(s.contribution, []).extend(_tagged(e, a.method) for e in s.evidence)
    shares = sorted(
        (
            Share(c, contributors[c], v, v, tuple(evidence.get(c, ())))
            for c, v in weights.items()
            if v > 0
        ),
        key=lambda s: (-s.weight, s.contribution),
    )
    top_evidence = [_tagged(e, a.method) for _, a in parts for e in a.evidence][: top * len(parts)]
    notes = tuple(f"{a.method}: {n}" for _, a in parts for n in a.notes)
    return Attribution(
        method="mix",
        params={
            "policy": {a.method: w for w, a in parts},
            "components": [
                {
                    "method": a.method,
                    "weight": w,
                    "params": dict(a.params),
                    "index_hash": a.index_hash,
                    "attributed": a.attributed,
                }
                for w, a in parts
            ],
        },
        shares=tuple(shares),
        evidence=tuple(top_evidence),
        model=model,
        index_hash=index_hash,
        truncated=any(a.truncated for _, a in parts),
        notes=notes,
    )


def _tagged(e: Evidence, method: str) -> Evidence:
    """``e`` with the method that found it in its detail."""
    return dataclasses.replace(e, detail={**e.detail, "method": method})
