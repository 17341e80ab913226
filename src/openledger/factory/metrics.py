"""The trainer's metrics.jsonl (one JSON row per optimizer step) and its loss plot."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from openledger.fsutil import write_atomic


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 700.0))


def metrics_row(
    step: int,
    steps_per_epoch: int,
    loss: Any,
    state: Any,
    *,
    eval_loss: float | None,
    lr: float | None,
) -> dict[str, Any]:
    """One metrics.jsonl row (``loss`` may still be a device tensor until flushed)."""
    return {
        "step": step,
        "epoch": round(step / steps_per_epoch, 4),
        "train_loss": loss,
        "eval_loss": eval_loss,
        "eval_ppl": perplexity(eval_loss),
        "tokens": state.tokens,
        "tokens_per_s": state.tokens / state.train_time if state.train_time else None,
        "lr": lr,
        "time": round(state.elapsed, 4),
    }


def append_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the rows past ``step`` (those after the checkpoint resumed from)."""
    rows = [r for r in read_metrics(path) if r["step"] <= step]
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl (a torn last line, from a killed process, is skipped)."""
    rows: list[dict[str, Any]] = []
    if not Path(path).exists():
        return rows
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def plot_loss(metrics_path: Path, out_png: Path) -> Path:
    """Draw train loss (raw and smoothed) and eval loss against step into ``out_png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_path)
    train = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    evals = [(r["step"], r["eval_loss"]) for r in rows if r.get("eval_loss") is not None]
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=1)
        smooth, ema = [], losses[0]
        for value in losses:
            ema = 0.9 * ema + 0.1 * value
            smooth.append(ema)
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.5, label="train loss")
    if evals:
        steps, losses = zip(*evals, strict=True)
        ax.plot(steps, losses, "o-", color="tab:orange", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    tmp = out_png.with_name(f".{out_png.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, out_png)
    return out_png
