"""An account's earnings as a dashboard shows them: the datanets' and models' names its
earnings are keyed by, and one point per epoch for the chart (the open epoch last).

Pure functions over what the services read (``RewardsService.earnings``,
``DatanetService.list``, ``ModelService.list``, ``EpochService.list``), so the web app's
``GET /web/api/rewards`` only reads and shapes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def timeline(
    by_epoch: Mapping[str, str], epochs: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One point per epoch of ``by_epoch`` (epoch number as a string, or ``"open"``: the
    amount earned in it): when the epoch was settled (else created; None for the open one),
    in epoch order with the open epoch last."""
    known = {str(e["epoch"]): e for e in epochs}
    points = []
    for k, v in by_epoch.items():
        e = known.get(k) or {}
        points.append({"epoch": k, "amount": v, "at": e.get("settled_at") or e.get("created_at")})
    points.sort(
        key=lambda r: (r["epoch"] == "open", int(r["epoch"]) if r["epoch"].isdigit() else 0)
    )
    return points


def names(
    datanets: Iterable[Mapping[str, Any]], models: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, str]]:
    """The names of the datanets and models earnings are keyed by (their on-chain ids, as
    strings)."""
    return {
        "datanet": {str(d["id"]): d["name"] for d in datanets},
        "model": {str(m["id"]): m["name"] for m in models},
    }


def earnings_view(
    earnings: Mapping[str, Any],
    *,
    datanets: Iterable[Mapping[str, Any]],
    models: Iterable[Mapping[str, Any]],
    epochs: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """``earnings`` (``RewardsService.earnings``) with the names of what they are keyed by
    and their timeline."""
    return {
        "earnings": earnings,
        "names": names(datanets, models),
        "timeline": timeline(earnings["by_epoch"], epochs),
    }
