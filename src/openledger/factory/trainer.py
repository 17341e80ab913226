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

import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from openledger.errors import ConflictError, ValidationError
from openledger.factory.config import ALL_LINEAR, TrainConfig
from openledger.factory.data import IGNORE, Example, collate, lineage
from openledger.fsutil import fsync_dir, write_atomic

log = logging.getLogger(__name__)

LOG_EVERY = 10
MEGABATCH = 50  # length grouping sorts windows of MEGABATCH batches (as HF does)
CKPT_RE = re.compile(r"step-(\d+)")
#: Settings that may differ between a run and its resume (they don't change the maths).
RESUMABLE_CHANGES = frozenset({"checkpoint_every", "keep_checkpoints"})


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
    base_eval_loss: float
    base_eval_ppl: float
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


@dataclass
class _State:
    """What a checkpoint records besides tensors (JSON)."""

    step: int = 0
    tokens: int = 0
    train_time: float = 0.0
    elapsed: float = 0.0
    base_eval_loss: float = math.nan
    best_eval_loss: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    last_eval_step: int | None = None
    last_eval_loss: float | None = None
    stopped_early: bool = False
    done: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _State:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 700.0))


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
        for name, examples in (("train", train), ("eval", eval)):
            if not examples:
                raise ValidationError(
                    f"The {name} split has no examples.",
                    field=name,
                    value=0,
                    fix="add records to the datanet, or change eval_split so both the "
                    "train and the eval split get examples.",
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
                if (
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
        cfg = self.config
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return cfg.lr
        progress = (step - cfg.warmup_steps) / max(1, self.total_steps - cfg.warmup_steps)
        if cfg.schedule == "cosine":
            return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        return cfg.lr * max(0.0, 1.0 - progress)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """Batches (lists of train indices) of ``epoch``: a function of (seed, epoch)."""
        if self._batches is not None and self._batches[0] == epoch:
            return self._batches[1]
        cfg = self.config
        rng = random.Random(cfg.seed * 1_000_003 + epoch)
        order = list(range(len(self.train)))
        rng.shuffle(order)
        size = cfg.batch_size
        if cfg.group_by_length and len(order) > size:
            window = size * MEGABATCH
            grouped: list[int] = []
            for k in range(0, len(order), window):
                grouped += sorted(order[k : k + window], key=lambda i: -len(self.train[i]))
            order = grouped
        batches = [order[k : k + size] for k in range(0, len(order), size)]
        if cfg.group_by_length:
            rng.shuffle(batches)
        self._batches = (epoch, batches)
        return batches

    # ------------------------------------------------------------------ metrics

    def _row(
        self,
        step: int,
        loss: torch.Tensor | None,
        state: _State,
        *,
        eval_loss: float | None,
        lr: float | None,
    ) -> dict[str, Any]:
        return {
            "step": step,
            "epoch": round(step / self.steps_per_epoch, 4),
            "train_loss": loss,
            "eval_loss": eval_loss,
            "eval_ppl": perplexity(eval_loss),
            "tokens": state.tokens,
            "tokens_per_s": state.tokens / state.train_time if state.train_time else None,
            "lr": lr,
            "time": round(state.elapsed, 4),
        }

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
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)

    # ------------------------------------------------------------------ checkpoints

    def _trainable(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in self.params}

    def _load_trainable(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, param in self.params:
                param.copy_(tensors[name].to(param.device))

    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        for split, examples in (("train", self.train), ("eval", self.eval)):
            h.update(split.encode())
            for e in examples:
                h.update(e.example_id.encode())
                h.update(np.asarray(e.input_ids, dtype=np.int64).tobytes())
                h.update(np.asarray(e.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def _save_checkpoint(self, state: _State) -> Path:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{state.step:06d}"
        tmp = self.checkpoint_dir / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        current = self._trainable()
        save_file(current, str(tmp / "adapter.safetensors"))
        save_file(self._best if self._best is not None else current, str(tmp / "best.safetensors"))
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(_rng_state(), tmp / "rng.pt")
        meta = {
            "state": asdict(state),
            "has_best": self._best is not None,
            "config": self.config.to_dict(),
            "data": self._fingerprint(),
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
        }
        (tmp / "state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        for path in tmp.iterdir():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        with self.metrics_path.open("rb") as fh:  # metrics up to this step are durable
            os.fsync(fh.fileno())
        final = self.checkpoint_dir / name
        if final.exists():
            shutil.rmtree(final)
        _publish(tmp, final)
        fsync_dir(self.checkpoint_dir)
        for old in self.checkpoints()[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return list_checkpoints(self.work_dir)

    def _resume(self) -> _State | None:
        """Load the newest readable checkpoint; None when there is none."""
        if self.checkpoint_dir.is_dir():
            for stale in self.checkpoint_dir.glob(".tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
        for path in reversed(self.checkpoints()):
            try:
                meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
                current = load_file(str(path / "adapter.safetensors"))
                best = load_file(str(path / "best.safetensors"))
                optim = torch.load(path / "optimizer.pt", weights_only=True)
                rng = torch.load(path / "rng.pt", weights_only=True)
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
            _set_rng_state(rng)
            self._truncate_metrics(state.step)
            log.info("resuming from %s (step %d)", path, state.step)
            return state
        return None

    def _check_compatible(self, meta: dict[str, Any], path: Path) -> None:
        saved = meta.get("config", {})
        now = self.config.to_dict()
        for key, value in now.items():
            if key in RESUMABLE_CHANGES or saved.get(key, value) == value:
                continue
            raise ConflictError(
                f"The checkpoint in {path.parent} was trained with {key}={saved[key]!r}, "
                f"not {value!r}.",
                field=key,
                value=value,
                fix=f"resume with {key}={saved[key]!r}, or start over in a new work dir "
                "(or with resume=False).",
            )
        if meta.get("data") != self._fingerprint():
            raise ConflictError(
                f"The checkpoint in {path.parent} was trained on different examples.",
                field="data",
                value=str(path),
                fix="resume with the same snapshot, tokenizer and max_seq_len, or start over "
                "in a new work dir (or with resume=False).",
            )

    def _truncate_metrics(self, step: int) -> None:
        rows = [r for r in read_metrics(self.metrics_path) if r["step"] <= step]
        write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

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
        return TrainResult(
            adapter_dir=adapter_dir,
            completed=not interrupted,
            steps=state.step,
            total_steps=self.total_steps,
            epochs_done=state.step // self.steps_per_epoch,
            stopped_early=state.stopped_early,
            interrupted=interrupted,
            best_step=state.best_step,
            best_eval_loss=state.best_eval_loss,
            base_eval_loss=state.base_eval_loss,
            base_eval_ppl=perplexity(state.base_eval_loss),
            adapter_eval_loss=None if interrupted else state.best_eval_loss,
            adapter_eval_ppl=None if interrupted else perplexity(state.best_eval_loss),
            metrics_path=self.metrics_path,
            loss_curve_path=png,
            lineage_path=self.work_dir / "lineage.json",
            train_examples=len(self.train),
            eval_examples=len(self.eval),
            train_tokens=state.tokens,
            tokens_per_s=state.tokens / state.train_time if state.train_time else 0.0,
        )


# --------------------------------------------------------------------------- helpers


def _wrap(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if isinstance(model, PeftModel):
        raise ValidationError(
            "The model already carries a PEFT adapter.",
            field="model",
            value=type(model).__name__,
            fix="pass the base model; the trainer adds the adapter itself.",
        )
    if cfg.method == "qlora":
        if not getattr(model, "is_loaded_in_4bit", False):
            raise ValidationError(
                "qlora trains on a base loaded in 4-bit; this one is not quantised.",
                field="method",
                value=cfg.method,
                fix="load the base with a BitsAndBytesConfig(load_in_4bit=True), or use "
                "--method lora.",
            )
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    targets: Any = ALL_LINEAR if cfg.target_modules == (ALL_LINEAR,) else list(cfg.target_modules)
    alpha = int(cfg.alpha) if float(cfg.alpha).is_integer() else cfg.alpha
    lora = LoraConfig(
        r=cfg.rank,
        lora_alpha=alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        use_dora=cfg.method == "dora",
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft asks a deprecated transformers property
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        return get_peft_model(model, lora)


def _pad_id(tokenizer: Any) -> int:
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def _causal_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> Any:
    """Next-token cross-entropy (labels shifted left, -100 ignored). With "sum", returns
    (sum, count of loss tokens)."""
    shifted = F.pad(labels[:, 1:], (0, 1), value=IGNORE).reshape(-1)
    flat = logits.float().reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(flat, shifted, ignore_index=IGNORE, reduction=reduction)
    if reduction == "sum":
        return loss, (shifted != IGNORE).sum()
    return loss


def _publish(tmp: Path, final: Path) -> None:
    """Move a fully written directory into place (atomic on one filesystem)."""
    os.rename(tmp, final)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
        "numpy_pos": int(np_state["state"]["pos"]),
        "numpy_gauss": [int(np_state["has_gauss"]), float(np_state["gauss"])],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {
                "key": state["numpy_key"].numpy().astype(np.uint32),
                "pos": state["numpy_pos"],
            },
            "has_gauss": state["numpy_gauss"][0],
            "gauss": state["numpy_gauss"][1],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Bar:
    """A rich progress bar: steps, loss, tokens/s, elapsed and ETA."""

    def __init__(self, trainer: Trainer, start: int) -> None:
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

    def show(self, state: _State, loss: float | None) -> None:
        tps = state.tokens / state.train_time if state.train_time else 0.0
        fields_ = {"tps": f"{tps:,.0f}"}
        if loss is not None:
            fields_["loss"] = f"{loss:.4f}"
        self.progress.update(self.task, **fields_)

    def advance(self, step: int) -> None:
        self.progress.update(self.task, completed=step)

    def close(self) -> None:
        self.progress.stop()


# --------------------------------------------------------------------------- files


def list_checkpoints(work_dir: Path) -> list[Path]:
    """The complete checkpoints in ``work_dir/checkpoints``, oldest first (a directory is
    complete once renamed to ``step-NNNNNN``; temporaries start with a dot)."""
    folder = Path(work_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := CKPT_RE.fullmatch(p.name)) and (p / "state.json").is_file()
    ]
    return [p for _, p in sorted(found)]


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
