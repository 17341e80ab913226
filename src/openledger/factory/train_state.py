"""What a training run reports (:class:`TrainResult`) and what a checkpoint records
besides tensors (:class:`TrainState`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from openledger.factory.metrics import perplexity


@dataclass
class TrainResult:
    adapter_dir: Path | None  # None when interrupted by should_stop
    completed: bool  # trained to the end or stopped early: the adapter is final
    steps: int
    total_steps: int
    epochs_done: int
    stopped_early: bool
    interrupted: bool
    best_step: int | None
    best_eval_loss: float | None
    base_eval_loss: float | None  # None: nothing was held out (eval_split 0)
    base_eval_ppl: float | None
    adapter_eval_loss: float | None
    adapter_eval_ppl: float | None
    metrics_path: Path
    loss_curve_path: Path | None
    lineage_path: Path
    train_examples: int
    eval_examples: int
    train_tokens: int
    tokens_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_state(
        cls,
        state: TrainState,
        *,
        adapter_dir: Path | None,
        interrupted: bool,
        png: Path | None,
        total_steps: int,
        steps_per_epoch: int,
        metrics_path: Path,
        lineage_path: Path,
        train_examples: int,
        eval_examples: int,
    ) -> TrainResult:
        return cls(
            adapter_dir=adapter_dir,
            completed=not interrupted,
            steps=state.step,
            total_steps=total_steps,
            epochs_done=state.step // steps_per_epoch,
            stopped_early=state.stopped_early,
            interrupted=interrupted,
            best_step=state.best_step,
            best_eval_loss=state.best_eval_loss,
            base_eval_loss=state.base_eval_loss,
            base_eval_ppl=perplexity(state.base_eval_loss),
            adapter_eval_loss=None if interrupted else state.best_eval_loss,
            adapter_eval_ppl=None if interrupted else perplexity(state.best_eval_loss),
            metrics_path=metrics_path,
            loss_curve_path=png,
            lineage_path=lineage_path,
            train_examples=train_examples,
            eval_examples=eval_examples,
            train_tokens=state.tokens,
            tokens_per_s=state.tokens / state.train_time if state.train_time else 0.0,
        )


@dataclass
class TrainState:
    """What a checkpoint records besides tensors (JSON)."""

    step: int = 0
    tokens: int = 0
    train_time: float = 0.0
    elapsed: float = 0.0
    base_eval_loss: float | None = math.nan
    best_eval_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    last_eval_loss: float | None = None
    stopped_early: bool = False
    done: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
