"""Attribution quality metrics: canary top-1, leave-one-contributor-out and LDS.

- **canary top-1**: the share of queries whose largest contributor (weights summed over
  the contributor's contributions) is one who holds the queried fact.
- **LOCO Spearman**: the rank correlation over contributors between the predicted share
  (summed over the queries) and the actual increase of the queries' total loss when the
  model is retrained without that contributor. The per-query version (ρ over contributors
  for each query, averaged) is reported beside it: with facts nobody else holds, every
  contributor but the owner changes a query's loss by retraining noise alone, which caps
  it near 0.2 for any method.
- **LDS** (linear datamodeling score, Park et al. 2023): per query, the rank correlation
  over random training subsets S between the prediction Σ_{c∈S} τ(q, c) and the query's
  actual log-likelihood under a model retrained on S; averaged over queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def rank(values: Sequence[float]) -> np.ndarray:
    """Ranks 0..n-1, ties given their average rank."""
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a), dtype=float)
    for v in np.unique(a):
        tied = a == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ (Pearson on average ranks); 0 when either side is constant."""
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else 0.0


def by_contributor(
    scores: Mapping[int, float], contributor_of: Mapping[int, str]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for c, s in scores.items():
        out[contributor_of[c]] = out.get(contributor_of[c], 0.0) + s
    return out


def canary_hit(shares: Mapping[str, float], holders: Sequence[str]) -> bool:
    """The largest share belongs to a holder of the fact (ties count against)."""
    if not shares:
        return False
    best = max(shares.values())
    if best <= 0:
        return False
    top = [n for n, s in shares.items() if s == best]
    return len(top) == 1 and top[0] in holders


def loco_spearman(
    predicted: Sequence[Mapping[str, float]], increase: Sequence[Mapping[str, float]]
) -> float:
    """Mean over queries of ρ(predicted share, actual loss increase) over contributors."""
    values = []
    for pred, actual in zip(predicted, increase, strict=True):
        names = sorted(actual)
        values.append(spearman([pred.get(n, 0.0) for n in names], [actual[n] for n in names]))
    return float(np.mean(values)) if values else 0.0


def loco_total(
    predicted: Sequence[Mapping[str, float]], increase: Sequence[Mapping[str, float]]
) -> float:
    """ρ over contributors between the share summed over all queries and the query set's
    total loss increase when the contributor is left out."""
    names = sorted(increase[0]) if increase else []
    pred = [sum(p.get(n, 0.0) for p in predicted) for n in names]
    actual = [sum(a[n] for a in increase) for n in names]
    return spearman(pred, actual)


def lds(
    tau: Sequence[Mapping[int, float]], subsets: Sequence[set[int]], actual: np.ndarray
) -> float:
    """``tau[q][c]``: a method's score of contribution c for query q; ``actual[s, q]``: the
    query's log-likelihood under the model trained on ``subsets[s]``."""
    values = []
    for q, scores in enumerate(tau):
        predicted = [sum(scores.get(c, 0.0) for c in s) for s in subsets]
        values.append(spearman(predicted, actual[:, q]))
    return float(np.mean(values)) if values else 0.0
