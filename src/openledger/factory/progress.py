"""The trainer's rich progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openledger.factory.train_state import TrainState


class TrainBar:
    """A rich progress bar: steps, loss, tokens/s, elapsed and ETA."""

    def __init__(self, trainer: Any, start: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=trainer.console,
        )
        self.task = self.progress.add_task(
            "train", total=trainer.total_steps, completed=start, loss="-", tps="-"
        )
        self.progress.start()

    def show(self, state: TrainState, loss: float | None) -> None:
        tps = state.tokens / state.train_time if state.train_time else 0.0
        fields_ = {"tps": f"{tps:,.0f}"}
        if loss is not None:
            fields_["loss"] = f"{loss:.4f}"
        self.progress.update(self.task, **fields_)

    def advance(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def close(self) -> None:
        self.progress.stop()
