"""Training configuration: one dataclass, read from a mapping (YAML/JSON/CLI flags) and
checked before any work starts, with errors that name the field, the value and the fix."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from openledger.errors import ValidationError

METHODS = ("lora", "dora", "qlora")
SCHEDULES = ("linear", "cosine", "constant")
ALL_LINEAR = "all-linear"


@dataclass
class TrainConfig:
    """How to fine-tune an adapter.

    ``eval_every``: evaluate every N optimizer steps, or at the end of each epoch when
    None (training always ends with an evaluation). ``patience``: stop after this many
    evaluations without a lower eval loss (None: never stop early). ``schedule``: the
    learning rate after ``warmup_steps`` of linear warm-up. ``group_by_length``: batch
    examples of similar length together (less padding; deterministic from the seed).
    """

    method: str = "lora"
    rank: int = 8
    alpha: float = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    lr: float = 1e-3
    epochs: int = 1
    batch_size: int = 8
    max_seq_len: int = 256
    eval_split: float = 0.1
    seed: int = 0
    eval_every: int | None = None
    patience: int | None = 3
    checkpoint_every: int = 20
    keep_checkpoints: int = 2
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = 1.0
    schedule: str = "linear"
    group_by_length: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = _split_modules(self.target_modules)
        else:
            self.target_modules = tuple(self.target_modules)

    # ------------------------------------------------------------------ (de)serialising

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> TrainConfig:
        """Build from a plain mapping (a YAML/JSON file, form fields). Keys may use
        dashes (``max-seq-len``); numbers may be strings (YAML reads ``1e-3`` as one)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValidationError(
                f"A training configuration must be a mapping, not {type(data).__name__}.",
                field="config",
                value=type(data).__name__,
                fix="write it as key: value pairs, e.g. `rank: 8`.",
            )
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for raw_key, raw in data.items():
            key = str(raw_key).replace("-", "_")
            if key not in known:
                raise ValidationError(
                    f"Unknown training option {raw_key!r}.",
                    field=str(raw_key),
                    value=raw,
                    fix=f"use one of: {', '.join(known)}.",
                )
            values[key] = _coerce(key, raw)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target_modules"] = list(self.target_modules)
        return out

    # ------------------------------------------------------------------ checks

    def validate(self, model: Any = None) -> TrainConfig:
        """Raise :class:`ValidationError` for the first bad setting; with ``model``, also
        check the target modules against its linear layers. Returns self."""
        at_least = "must be at least"
        checks: list[tuple[bool, str, str, str]] = [
            (self.method in METHODS, "method", "is unknown", f"use one of {', '.join(METHODS)}."),
            (self.rank >= 1, "rank", f"{at_least} 1", "use e.g. 8."),
            (self.alpha > 0, "alpha", "must be positive", "use e.g. 16 (twice the rank)."),
            (0 <= self.dropout < 1, "dropout", "must be in [0, 1)", "use 0 or e.g. 0.05."),
            (self.lr > 0 and math.isfinite(self.lr), "lr", "must be positive", "use e.g. 1e-4."),
            (self.epochs >= 1, "epochs", f"{at_least} 1", "use e.g. 1."),
            (self.batch_size >= 1, "batch_size", f"{at_least} 1", "use e.g. 8."),
            (self.max_seq_len >= 8, "max_seq_len", f"{at_least} 8", "use e.g. 256."),
            (
                0 <= self.eval_split < 1,
                "eval_split",
                "must be at least 0 and below 1",
                "hold out e.g. 0.1, or 0 to train on every record.",
            ),
            (
                self.eval_every is None or self.eval_every >= 1,
                "eval_every",
                f"{at_least} 1 (or unset: once per epoch)",
                "use e.g. 50.",
            ),
            (
                self.patience is None or self.patience >= 1,
                "patience",
                f"{at_least} 1 (or unset: no early stopping)",
                "use e.g. 3.",
            ),
            (
                self.checkpoint_every >= 1,
                "checkpoint_every",
                f"{at_least} 1",
                "use e.g. 20.",
            ),
            (
                self.keep_checkpoints >= 1,
                "keep_checkpoints",
                f"{at_least} 1 (resuming needs one)",
                "use e.g. 2.",
            ),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0", "use 0 or e.g. 0.01."),
            (self.warmup_steps >= 0, "warmup_steps", "must be >= 0", "use 0 or e.g. 10."),
            (
                self.max_grad_norm is None or self.max_grad_norm > 0,
                "max_grad_norm",
                "must be positive (or unset: no clipping)",
                "use 1.0.",
            ),
            (
                self.schedule in SCHEDULES,
                "schedule",
                "is unknown",
                f"use one of {', '.join(SCHEDULES)}.",
            ),
            (
                bool(self.target_modules),
                "target_modules",
                "is empty",
                "name at least one linear layer, e.g. q_proj,v_proj.",
            ),
        ]
        for ok, field, problem, fix in checks:
            if not ok:
                value = getattr(self, field)
                value = list(value) if isinstance(value, tuple) else value
                raise ValidationError(
                    f"{field} {value!r} {problem}.", field=field, value=value, fix=fix
                )
        if self.method == "qlora":
            _check_qlora()
        if model is not None:
            self._check_model(model)
        return self

    def _check_model(self, model: Any) -> None:
        names = linear_module_paths(model)
        leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
        if self.target_modules != (ALL_LINEAR,):
            for target in self.target_modules:
                if not any(n == target or n.endswith("." + target) for n in names):
                    _bad(
                        "target_modules",
                        target,
                        f"target module {target!r} is not a linear layer of this model",
                        f"choose from {', '.join(leaves)} (or {ALL_LINEAR}).",
                    )
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        if isinstance(limit, int) and self.max_seq_len > limit:
            _bad(
                "max_seq_len",
                self.max_seq_len,
                f"max_seq_len {self.max_seq_len} is longer than the model's context ({limit})",
                f"use a max_seq_len of {limit} or less.",
            )


def linear_module_paths(model: Any) -> list[str]:
    """Dotted names of the model's linear layers: ``nn.Linear`` (quantised ones included)
    and GPT-2 style ``Conv1D``, which PEFT adapts too. A PEFT-wrapped layer counts under
    its own name, its LoRA parts not at all."""
    from torch import nn

    kinds: tuple[type, ...] = (nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        kinds = (nn.Linear, Conv1D)
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    out = []
    for name, module in model.named_modules():
        if not isinstance(module, kinds) or not name:
            continue
        parts = name.split(".")
        if any(p.startswith("lora_") for p in parts):
            continue
        if parts[-1] == "base_layer":
            name = ".".join(parts[:-1])
        out.append(name)
    return out


def _check_qlora() -> None:
    import torch

    if not torch.cuda.is_available():
        _bad(
            "method",
            "qlora",
            "qlora trains on a 4-bit base and needs a CUDA GPU; none is available here",
            "use the method lora on CPU (or dora).",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        _bad(
            "method",
            "qlora",
            "qlora needs the bitsandbytes package, which is not installed",
            "have the operator pip install bitsandbytes on the node, or use the method lora.",
        )


def _bad(field: str, value: Any, problem: str, fix: str) -> None:
    raise ValidationError(f"{problem}.", field=field, value=value, fix=fix)


# --------------------------------------------------------------------------- coercion

_INT = {
    "rank",
    "epochs",
    "batch_size",
    "max_seq_len",
    "seed",
    "checkpoint_every",
    "keep_checkpoints",
    "warmup_steps",
}
_OPT_INT = {"eval_every", "patience"}
_FLOAT = {"alpha", "dropout", "lr", "eval_split", "weight_decay"}
_OPT_FLOAT = {"max_grad_norm"}
_STR = {"method", "schedule"}


def _split_modules(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _coerce(key: str, raw: Any) -> Any:
    def fail(kind: str, example: str) -> ValidationError:
        return ValidationError(
            f"Training option {key} must be {kind}, not {raw!r}.",
            field=key,
            value=raw,
            fix=f"write e.g. {key}: {example}.",
        )

    if raw is None and key in _OPT_INT | _OPT_FLOAT:
        return None
    if key in _INT | _OPT_INT:
        if isinstance(raw, bool):
            raise fail("an integer", "8")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            return int(raw)
        raise fail("an integer", "8")
    if key in _FLOAT | _OPT_FLOAT:
        if isinstance(raw, bool):
            raise fail("a number", "0.001")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise fail("a number", "0.001") from None
        if not math.isfinite(value):
            raise fail("a finite number", "0.001")
        return value
    if key in _STR:
        if not isinstance(raw, str):
            raise fail("a string", "lora")
        return raw.strip().lower()
    if key == "group_by_length":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "yes", "no", "1", "0"):
            return raw.lower() in ("true", "yes", "1")
        raise fail("true or false", "true")
    if key == "target_modules":
        if isinstance(raw, str):
            return _split_modules(raw)
        if isinstance(raw, list | tuple) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
        raise fail("a list of module names", "[q_proj, v_proj]")
    raise AssertionError(key)  # pragma: no cover - every field is handled above
