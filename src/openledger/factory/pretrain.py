"""Pretraining of the tiny base: packed sequences, the LR schedule and the AdamW loop."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from openledger.errors import ValidationError

if TYPE_CHECKING:
    from openledger.factory.tiny_config import TinyBaseConfig


def pack_sequences(
    corpus: list[str], tokenizer: Any, seq_len: int, needed: int, seed: int
) -> torch.Tensor:
    """``needed`` rows of ``seq_len`` tokens: ``<|bos|> doc <|eos|>`` packed back to back.

    Documents are shuffled with ``seed``, the stream is cut into rows, and the rows are
    shuffled again; if the corpus is short, later epochs reshuffle with ``seed + epoch``.
    """
    encoded = [e.ids for e in tokenizer.backend_tokenizer.encode_batch(corpus)]
    eos = tokenizer.eos_token_id
    docs = [ids + [eos] for ids in encoded if len(ids) > 1]
    if not docs:
        raise ValidationError(
            "the tiny-base corpus is empty.",
            field="corpus",
            value=len(corpus),
            fix="pass a corpus with some text (or none, for the default).",
        )
    rows: list[list[int]] = []
    epoch = 0
    while len(rows) < needed:
        rng = random.Random(seed + epoch)
        order = list(range(len(docs)))
        rng.shuffle(order)
        stream = [t for i in order for t in docs[i]]
        epoch_rows = [stream[i : i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
        if not epoch_rows:  # shorter than one row: repeat the stream until it fills one
            reps = seq_len // len(stream) + 1
            epoch_rows = [(stream * reps)[:seq_len]]
        rng.shuffle(epoch_rows)
        rows.extend(epoch_rows)
        epoch += 1
    return torch.tensor(rows[:needed], dtype=torch.long)


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _lr_at(step: int, config: TinyBaseConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (
        1 + math.cos(math.pi * progress)
    )
    return config.lr * ratio


def _pretrain(
    model: Any, data: torch.Tensor, config: TinyBaseConfig, progress: bool
) -> list[float]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
        foreach=False,
    )
    model.train()
    losses: list[float] = []
    tokens_per_step = config.batch_size * config.seq_len
    bar = Progress(
        TextColumn("pretraining"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[tps]} tok/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
    )
    start = time.perf_counter()
    with bar:
        task = bar.add_task("pretrain", total=config.steps, loss="-", tps="-")
        for step in range(config.steps):
            batch = data[step * config.batch_size : (step + 1) * config.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, config)
            logits = model(input_ids=batch).logits
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1)
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            elapsed = time.perf_counter() - start
            bar.update(
                task,
                advance=1,
                loss=f"{losses[-1]:.3f}",
                tps=f"{(step + 1) * tokens_per_step / max(elapsed, 1e-9):,.0f}",
            )
    model.eval()
    return losses
