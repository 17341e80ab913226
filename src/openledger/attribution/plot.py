"""Drawing an attribution: one horizontal bar per contribution (its share), unattributed last."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from openledger.attribution.types import Attribution


def plot_shares(
    result: Attribution, out_png: Path, names: Mapping[str, str] | None = None, limit: int = 12
) -> Path:
    """Save a bar chart of ``result``'s shares; ``names`` maps contributor address → label."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = names or {}
    shares = list(result.shares[:limit])
    labels = [f"#{s.contribution} {names.get(s.contributor, s.contributor[:10])}" for s in shares]
    values = [s.weight for s in shares]
    rest = 1.0 - sum(values)
    if rest > 1e-9:
        labels.append("other / unattributed")
        values.append(rest)
    fig = Figure(figsize=(7, 0.5 * len(values) + 1.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(range(len(values))[::-1], values, color="tab:green")
    ax.set_yticks(range(len(values))[::-1], labels)
    for y, v in zip(range(len(values))[::-1], values, strict=True):
        ax.text(v, y, f" {v:.1%}", va="center")
    ax.set_xlim(0, max(values + [0.01]) * 1.25)
    ax.set_xlabel("share of the contributors' fee")
    ax.set_title(f"{result.model or 'model'}: attribution ({result.method})")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, out_png)
    return out_png
