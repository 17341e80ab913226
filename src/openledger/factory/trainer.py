"""The LoRA/DoRA/QLoRA training loop: deterministic, resumable, evaluated, drawn.

Layout of ``work_dir``::

    checkpoints/step-000040/   adapter.safetensors (trainable tensors by name),
                               best.safetensors (the best-by-eval adapter so far),
                               optimizer.pt, rng.pt (torch, numpy, python), state.json
    metrics.jsonl              one line per optimizer step (+ a step-0 line: the base's eval)
    lineage.json               (snapshot, record, sha256, contribution, contributor) of
                               every train and eval example
    adapter/                   the final adapter (PEFT save_pretrained, safetensors)
    loss.png                   train and eval loss against step
    result.json                the :class:`TrainResult`

Determinism: the batches of epoch ``e`` are a pure function of ``(seed, e)``, the learning
rate a pure function of the step, and a checkpoint holds everything else that changes
(trainable tensors, optimizer moments, RNG states, early-stopping state). A run resumed
from any checkpoint therefore performs the same float operations as an uninterrupted one.
Checkpoints are written to a temporary directory and renamed into place, so a process
killed mid-write leaves at most a ``.tmp-*`` directory, which resume ignores and removes;
metrics lines past the checkpoint resumed from are dropped.

Speed: batches are padded per batch (right padding, grouped by length when
``group_by_length``), no attention mask is passed (with right padding the causal mask
already keeps real tokens from seeing padding, so the model takes its maskless causal
attention path), and the loss is read back from the device once every ``LOG_EVERY``
steps, not every step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from openledger.errors import ConflictError, ValidationError
from openledger.factory.checkpoints import (
    check_compatible,
    fingerprint,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    remove_stale,
    set_rng_state,
    write_checkpoint_files,
)
from openledger.factory.config import TrainConfig
from openledger.factory.data import Example, collate, lineage
from openledger.factory.metrics import (
    append_metrics,
    metrics_row,
    perplexity,
    plot_loss,
    truncate_metrics,
)
from openledger.factory.progress import TrainBar as _Bar
from openledger.factory.schedule import epoch_batches, lr_at
from openledger.factory.train_ops import causal_loss as _causal_loss
from openledger.factory.train_ops import pad_id as _pad_id
from openledger.factory.train_ops import wrap as _wrap
from openledger.factory.train_state import TrainResult
from openledger.factory.train_state import TrainState as _State
from openledger.fsutil import fsync_dir, write_atomic

log = logging.getLogger(__name__)

LOG_EVERY = 10


class Trainer:
    """Fine-tune an adapter on ``train``, evaluating on ``eval``, inside ``work_dir``.

    ``model`` is the base (a transformers causal LM); it is wrapped with PEFT in place,
    so pass a fresh one to each Trainer. After :meth:`run`, ``trainer.model`` holds the
    final (best-by-eval) adapter.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        train: list[Example],
        eval: list[Example],
        config: TrainConfig,
        work_dir: Path,
        *,
        progress: bool = True,
        console: Any = None,
    ) -> None:
        self.config = config.validate(model)
        for name, examples in (("train", train),):
            if not examples:
                raise ValidationError(
                    f"The {name} split has no examples.",
                    field=name,
                    value=0,
                    fix="add records to the datanet, or lower eval_split so the train split "
                    "gets examples.",
                )
        self.tokenizer = tokenizer
        self.train = list(train)
        self.eval = list(eval)
        self.work_dir = Path(work_dir)
        self.progress = progress
        self.console = console
        self.pad_id = _pad_id(tokenizer)
        self.steps_per_epoch = math.ceil(len(self.train) / self.config.batch_size)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self.metrics_path = self.work_dir / "metrics.jsonl"
        self.checkpoint_dir = self.work_dir / "checkpoints"

        torch.manual_seed(self.config.seed)  # LoRA A initialisation
        self.model = _wrap(model, self.config)
        self.model.train()
        self.device = next(self.model.parameters()).device
        self.params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            [p for _, p in self.params],
            lr=self.config.lr,
            weight_decay=self.config.weight_decay,
        )
        self._best: dict[str, torch.Tensor] | None = None
        self._batches: tuple[int, list[list[int]]] | None = None

    # ------------------------------------------------------------------ public

    def run(
        self, resume: bool = True, should_stop: Callable[[], bool] | None = None
    ) -> TrainResult:
        """Train to the end (or an early stop), or until ``should_stop()`` returns true
        after a step (then a checkpoint is written and the result has ``interrupted``)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            self._clear()
        write_atomic(
            self.work_dir / "lineage.json",
            json.dumps({"train": lineage(self.train), "eval": lineage(self.eval)}, indent=1),
        )
        state = self._resume() if resume else None
        if state is None:
            state = _State()
            write_atomic(self.metrics_path, "")
            state.base_eval_loss = None  # no held-out records: nothing to evaluate on
            if self.eval:
                with self.model.disable_adapter():
                    state.base_eval_loss = self._evaluate()
            self._append_metrics(
                [self._row(0, None, state, eval_loss=state.base_eval_loss, lr=None)]
            )
        if state.done:
            return self._finish(state)
        return self._loop(state, should_stop)

    # ------------------------------------------------------------------ loop

    def _loop(self, state: _State, should_stop: Callable[[], bool] | None) -> TrainResult:
        cfg = self.config
        session_start = time.perf_counter()
        elapsed0 = state.elapsed
        pending: list[dict[str, Any]] = []
        bar = _Bar(self, state.step) if self.progress else None
        try:
            while state.step < self.total_steps:
                t0 = time.perf_counter()
                epoch, position = divmod(state.step, self.steps_per_epoch)
                batch = [self.train[i] for i in self._epoch_batches(epoch)[position]]
                lr = self._lr(state.step)
                loss = self._train_step(batch, lr)
                ntok = sum(len(e) for e in batch)
                state.step += 1
                state.tokens += ntok
                state.train_time += time.perf_counter() - t0
                state.elapsed = elapsed0 + time.perf_counter() - session_start
                pending.append(self._row(state.step, loss, state, eval_loss=None, lr=lr))

                epoch_end = state.step % self.steps_per_epoch == 0
                finishing = state.step >= self.total_steps
                if self.eval and (
                    (cfg.eval_every and state.step % cfg.eval_every == 0)
                    or finishing
                    or (cfg.eval_every is None and epoch_end)
                ):
                    self._eval_step(state, pending[-1])
                    finishing = finishing or state.stopped_early
                stop = not finishing and should_stop is not None and bool(should_stop())
                checkpoint = finishing or stop or state.step % cfg.checkpoint_every == 0
                if checkpoint or len(pending) >= LOG_EVERY or pending[-1]["eval_loss"] is not None:
                    t1 = time.perf_counter()
                    last = self._flush(pending)
                    state.train_time += time.perf_counter() - t1
                    if bar is not None:
                        bar.show(state, last)
                if bar is not None:
                    bar.advance(state.step)
                if checkpoint:
                    state.done = finishing
                    state.elapsed = elapsed0 + time.perf_counter() - session_start
                    self._save_checkpoint(state)
                if finishing:
                    break
                if stop:
                    return self._result(state, adapter_dir=None, interrupted=True)
        finally:
            if bar is not None:
                bar.close()
        state.done = True
        return self._finish(state)

    def _train_step(self, batch: list[Example], lr: float) -> torch.Tensor:
        cfg = self.config
        b = collate(batch, self.pad_id)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        ids = b["input_ids"].to(self.device, non_blocking=True)
        labels = b["labels"].to(self.device, non_blocking=True)
        logits = self.model(input_ids=ids, use_cache=False).logits
        loss = _causal_loss(logits, labels)
        loss.backward()
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for _, p in self.params], cfg.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def _eval_step(self, state: _State, row: dict[str, Any]) -> None:
        loss = self._evaluate()
        row["eval_loss"] = loss
        row["eval_ppl"] = perplexity(loss)
        state.last_eval_step, state.last_eval_loss = state.step, loss
        if state.best_eval_loss is None or loss < state.best_eval_loss:
            state.best_eval_loss, state.best_step, state.bad_evals = loss, state.step, 0
            self._best = self._trainable()
        else:
            state.bad_evals += 1
            if self.config.patience is not None and state.bad_evals >= self.config.patience:
                state.stopped_early = True

    @torch.no_grad()
    def _evaluate(self) -> float:
        """Mean cross-entropy per loss token over the eval split."""
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = torch.zeros((), dtype=torch.int64, device=self.device)
        order = sorted(range(len(self.eval)), key=lambda i: len(self.eval[i]))
        size = self.config.batch_size
        for k in range(0, len(order), size):
            b = collate([self.eval[i] for i in order[k : k + size]], self.pad_id)
            ids = b["input_ids"].to(self.device)
            labels = b["labels"].to(self.device)
            logits = self.model(input_ids=ids, use_cache=False).logits
            loss, n = _causal_loss(logits, labels, reduction="sum")
            total += loss.double()
            count += n
        if was_training:
            self.model.train()
        return float(total.item() / max(int(count.item()), 1))

    def _lr(self, step: int) -> float:
        """Learning rate for the update made at (0-based) ``step``."""
        return lr_at(self.config, step, self.total_steps)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """Batches (lists of train indices) of ``epoch``: a function of (seed, epoch)."""
        if self._batches is None or self._batches[0] != epoch:
            self._batches = (epoch, epoch_batches(self.config, self.train, epoch))
        return self._batches[1]

    # ------------------------------------------------------------------ metrics

    def _row(
        self, step: int, loss: Any, state: _State, *, eval_loss: float | None, lr: float | None
    ) -> dict[str, Any]:
        return metrics_row(step, self.steps_per_epoch, loss, state, eval_loss=eval_loss, lr=lr)

    def _flush(self, pending: list[dict[str, Any]]) -> float | None:
        if not pending:
            return None
        losses = torch.stack([r["train_loss"] for r in pending]).float().tolist()
        for row, value in zip(pending, losses, strict=True):
            row["train_loss"] = value
        self._append_metrics(pending)
        pending.clear()
        return losses[-1]

    def _append_metrics(self, rows: list[dict[str, Any]]) -> None:
        append_metrics(self.metrics_path, rows)

    # ------------------------------------------------------------------ checkpoints

    def _trainable(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in self.params}

    def _load_trainable(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, param in self.params:
                param.copy_(tensors[name].to(param.device))

    def _fingerprint(self) -> str:
        return fingerprint(self.train, self.eval)

    def _save_checkpoint(self, state: _State) -> Path:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{state.step:06d}"
        tmp = self.checkpoint_dir / f".tmp-{name}-{os.getpid()}"
        current = self._trainable()
        best = self._best if self._best is not None else current
        meta = {
            "state": asdict(state),
            "has_best": self._best is not None,
            "config": self.config.to_dict(),
            "data": self._fingerprint(),
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
        }
        write_checkpoint_files(tmp, current, best, self.optimizer.state_dict(), meta)
        with self.metrics_path.open("rb") as fh:  # metrics up to this step are durable
            os.fsync(fh.fileno())
        final = self.checkpoint_dir / name
        if final.exists():
            shutil.rmtree(final)
        _publish(tmp, final)
        fsync_dir(self.checkpoint_dir)
        prune_checkpoints(self.work_dir, self.config.keep_checkpoints)
        return final

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return list_checkpoints(self.work_dir)

    def _resume(self) -> _State | None:
        """Load the newest readable checkpoint; None when there is none."""
        remove_stale(self.checkpoint_dir)
        for path in reversed(self.checkpoints()):
            try:
                meta, current, best, optim, rng = read_checkpoint(path)
            except Exception as exc:  # an unreadable checkpoint: fall back to an older one
                log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
                continue
            self._check_compatible(meta, path)
            state = _State.from_dict(meta["state"])
            missing = {n for n, _ in self.params} - set(current)
            if missing:
                raise ConflictError(
                    f"Checkpoint {path} lacks {len(missing)} adapter tensors "
                    f"(e.g. {sorted(missing)[0]}).",
                    field="checkpoint",
                    value=str(path),
                    fix="resume with the same base model and method, or start over (resume=False).",
                )
            self._load_trainable(current)
            self._best = best if meta.get("has_best") else None
            self.optimizer.load_state_dict(optim)
            set_rng_state(rng)
            self._truncate_metrics(state.step)
            log.info("resuming from %s (step %d)", path, state.step)
            return state
        return None

    def _check_compatible(self, meta: dict[str, Any], path: Path) -> None:
        check_compatible(meta, path, self.config.to_dict(), self._fingerprint())

    def _truncate_metrics(self, step: int) -> None:
        truncate_metrics(self.metrics_path, step)

    def _clear(self) -> None:
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        shutil.rmtree(self.work_dir / "adapter", ignore_errors=True)
        for name in ("metrics.jsonl", "loss.png", "result.json"):
            (self.work_dir / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ the end

    def _finish(self, state: _State) -> TrainResult:
        if self._best is not None and state.best_step != state.step:
            self._load_trainable(self._best)
        adapter = self.work_dir / "adapter"
        tmp = self.work_dir / f".tmp-adapter-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(str(tmp), safe_serialization=True)
        shutil.rmtree(adapter, ignore_errors=True)
        _publish(tmp, adapter)
        fsync_dir(self.work_dir)
        png = plot_loss(self.metrics_path, self.work_dir / "loss.png")
        result = self._result(state, adapter_dir=adapter, interrupted=False, png=png)
        write_atomic(self.work_dir / "result.json", json.dumps(result.to_dict(), indent=1))
        return result

    def _result(
        self, state: _State, *, adapter_dir: Path | None, interrupted: bool, png: Path | None = None
    ) -> TrainResult:
        return TrainResult.from_state(
            state,
            adapter_dir=adapter_dir,
            interrupted=interrupted,
            png=png,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            metrics_path=self.metrics_path,
            lineage_path=self.work_dir / "lineage.json",
            train_examples=len(self.train),
            eval_examples=len(self.eval),
        )


def _publish(tmp: Path, final: Path) -> None:
    """Move a fully written directory into place (atomic on one filesystem)."""
    os.rename(tmp, final)
