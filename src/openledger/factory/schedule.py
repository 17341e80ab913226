"""The trainer's schedules: the learning rate per step and the batches of each epoch.

Both are pure functions (of the config and the step, or of the seed and the epoch), which
is what makes a resumed run perform the same float operations as an uninterrupted one.
"""

from __future__ import annotations

import math
import random

from openledger.factory.config import TrainConfig
from openledger.factory.data import Example

MEGABATCH = 50  # length grouping sorts windows of MEGABATCH batches (as HF does)


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate for the update made at (0-based) ``step``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.lr * max(0.0, 1.0 - progress)


def epoch_batches(cfg: TrainConfig, train: list[Example], epoch: int) -> list[list[int]]:
    """Batches (lists of indices into ``train``) of ``epoch``: a function of (seed, epoch)."""
    rng = random.Random(cfg.seed * 1_000_003 + epoch)
    order = list(range(len(train)))
    rng.shuffle(order)
    size = cfg.batch_size
    if cfg.group_by_length and len(order) > size:
        window = size * MEGABATCH
        grouped: list[int] = []
        for k in range(0, len(order), window):
            grouped += sorted(order[k : k + window], key=lambda i: -len(train[i]))
        order = grouped
    batches = [order[k : k + size] for k in range(0, len(order), size)]
    if cfg.group_by_length:
        rng.shuffle(batches)
    return batches
