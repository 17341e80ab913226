"""Loading the model an index is about: the base, the published adapter, and optionally the
LoRA weights of an intermediate training checkpoint (for TRAK-style ensembles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from openledger.errors import NotFoundError, ValidationError


@dataclass(frozen=True)
class ModelSpec:
    """Picklable: worker processes load the same model from it."""

    base: str
    adapter_dir: str

    def load(self, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
        """(PEFT model in eval mode, tokenizer); the base and the adapter in ``dtype``
        (float64 for results anyone can reproduce exactly)."""
        from peft import PeftModel

        from openledger.factory.base import load_base

        model, tokenizer = load_base(self.base, dtype=dtype)
        adapter = Path(self.adapter_dir)
        if not (adapter / "adapter_config.json").exists():
            raise NotFoundError(
                f"No adapter in {adapter}.",
                field="adapter_dir",
                value=str(adapter),
                fix="publish the model first (from its finished training job).",
            )
        peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
        peft_model.to(dtype)  # the adapter's weights too (PEFT keeps them in float32)
        peft_model.eval()
        return peft_model, tokenizer


def lora_state(model: Any) -> dict[str, torch.Tensor]:
    """The adapter's LoRA weights by parameter name (a copy)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" in n}


def load_lora_state(model: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Put a checkpoint's LoRA weights into ``model`` (names as the trainer saved them)."""
    params = dict(model.named_parameters())
    missing = [n for n in params if ".lora_" in n and n not in tensors]
    if missing:
        raise ValidationError(
            f"The checkpoint lacks {len(missing)} of the adapter's LoRA weights "
            f"(e.g. {missing[0]}).",
            field="checkpoint",
            value=missing[0],
            fix="use checkpoints of the job that trained this adapter.",
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            if name in params:
                params[name].copy_(tensor.to(params[name].dtype))


def read_checkpoint_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))
