"""Model-side helpers of the trainer: PEFT wrapping, the pad id, the causal LM loss."""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

from openledger.errors import ValidationError
from openledger.factory.config import ALL_LINEAR, TrainConfig
from openledger.factory.data import IGNORE


def wrap(model: Any, cfg: TrainConfig) -> Any:
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
                fix="load the base with a BitsAndBytesConfig(load_in_4bit=True), or use the "
                "method lora.",
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


def pad_id(tokenizer: Any) -> int:
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def causal_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> Any:
    """Next-token cross-entropy (labels shifted left, -100 ignored). With "sum", returns
    (sum, count of loss tokens)."""
    shifted = F.pad(labels[:, 1:], (0, 1), value=IGNORE).reshape(-1)
    flat = logits.float().reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(flat, shifted, ignore_index=IGNORE, reduction=reduction)
    if reduction == "sum":
        return loss, (shifted != IGNORE).sum()
    return loss
