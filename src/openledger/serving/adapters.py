"""LoRA adapters as the serving engine holds them: read from a PEFT directory, checked, and
laid out for batched products.

A PEFT LoRA adapter stores, per adapted linear ``W`` (out × in), ``lora_A`` (r × in) and
``lora_B`` (out × r); the adapted layer computes ``W·x + s·B·A·x`` with
``s = alpha / r`` (``alpha / √r`` with rsLoRA). Here each pair becomes

* ``a``: in × r (``Aᵀ``, so a row vector multiplies it directly), and
* ``b``: r × out (``(s·B)ᵀ``, the scale folded in once at load time),

keyed by ``(layer index, module name)``. Variants whose forward is not ``W·x + s·B·A·x``
(DoRA, LoRA biases, extra trained modules) are refused with a message that says so.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from openledger.errors import NotFoundError, ValidationError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

#: The linears of a Llama-style decoder layer the engine can adapt.
ADAPTABLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_MLP = {"gate_proj", "up_proj", "down_proj"}
_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")

Key = tuple[int, str]  # (layer index, module name)


@dataclass(frozen=True)
class LoraAdapter:
    """One adapter's weights, ready to copy into a device slot."""

    name: str
    a: dict[Key, torch.Tensor]  # in × r
    b: dict[Key, torch.Tensor]  # r × out, scale folded in

    @property
    def max_rank(self) -> int:
        return max(t.shape[1] for t in self.a.values())

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.a.values(), *self.b.values()))

    @property
    def modules(self) -> set[str]:
        return {m for _, m in self.a}


def _invalid(name: str, path: Path, what: str, fix: str) -> ValidationError:
    return ValidationError(
        f"adapter {name!r} at {str(path)!r} cannot be served: {what}.",
        field="adapter",
        value=name,
        fix=fix,
    )


def _pattern_value(patterns: dict[str, float], module_path: str, default: float) -> float:
    """PEFT's rule: a pattern key matches a module path that ends with it (after a dot)."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module_path):
            return float(value)
    return default


def read_config(name: str, path: Path) -> dict:
    cfg_path = path / ADAPTER_CONFIG
    if not cfg_path.is_file() or not (path / ADAPTER_WEIGHTS).is_file():
        raise NotFoundError(
            f"adapter {name!r}: {str(path)!r} holds no {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}.",
            field="adapter",
            value=name,
            fix="re-publish the model (`openledger model publish`) or restore its directory.",
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(
            name,
            path,
            f"{ADAPTER_CONFIG} is not valid JSON ({exc})",
            "re-save the adapter with PEFT's save_pretrained.",
        ) from exc
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        raise _invalid(
            name,
            path,
            f"it is a {cfg.get('peft_type')} adapter, not LoRA",
            "serve LoRA adapters (the Model Factory's --method lora).",
        )
    unsupported = [
        (bool(cfg.get("use_dora")), "it is a DoRA adapter (magnitude-normalised weights)"),
        (bool(cfg.get("lora_bias")), "it trains LoRA biases"),
        (bool(cfg.get("modules_to_save")), "it saves whole modules besides the LoRA pairs"),
        (bool(cfg.get("fan_in_fan_out")), "it uses fan_in_fan_out (Conv1D) layers"),
        (cfg.get("bias", "none") != "none", f"it trains biases (bias={cfg.get('bias')!r})"),
    ]
    for bad, what in unsupported:
        if bad:
            raise _invalid(
                name,
                path,
                what,
                "merge it into a base model with PEFT's "
                "merge_and_unload and serve that, or retrain with --method lora.",
            )
    return cfg


def load_adapter(name: str, path: Path, *, dtype: torch.dtype = torch.float32) -> LoraAdapter:
    """Read and check a PEFT LoRA directory (disk → CPU tier)."""
    cfg = read_config(name, path)
    try:
        tensors = load_file(str(path / ADAPTER_WEIGHTS), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise _invalid(
            name,
            path,
            f"{ADAPTER_WEIGHTS} cannot be read ({exc})",
            "re-publish the model; the file is damaged.",
        ) from exc
    alpha = float(cfg.get("lora_alpha", cfg.get("r", 8)))
    rslora = bool(cfg.get("use_rslora"))
    alpha_pattern = cfg.get("alpha_pattern") or {}
    pairs: dict[Key, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        m = _KEY.search(key)
        if m is None:
            raise _invalid(
                name,
                path,
                f"it holds the tensor {key!r}, which is not a LoRA pair of a decoder-layer linear",
                "serve adapters of q/k/v/o and gate/up/down projections only.",
            )
        layer, module, which = int(m.group(1)), m.group(2), m.group(3)
        if module not in ADAPTABLE:
            raise _invalid(
                name,
                path,
                f"it adapts {module!r}",
                f"serve adapters of {', '.join(ADAPTABLE)} only.",
            )
        pairs.setdefault((layer, module), {})[which] = tensor
    if not pairs:
        raise _invalid(name, path, "it holds no LoRA weights", "re-publish the model.")
    a: dict[Key, torch.Tensor] = {}
    b: dict[Key, torch.Tensor] = {}
    for (layer, module), pair in sorted(pairs.items()):
        if set(pair) != {"A", "B"} or pair["A"].shape[0] != pair["B"].shape[1]:
            raise _invalid(
                name,
                path,
                f"layer {layer} {module}: lora_A and lora_B do not pair",
                "re-save the adapter with PEFT's save_pretrained.",
            )
        rank = pair["A"].shape[0]
        block = "mlp" if module in _MLP else "self_attn"
        module_path = f"model.layers.{layer}.{block}.{module}"
        mod_alpha = _pattern_value(alpha_pattern, module_path, alpha)
        scale = mod_alpha / math.sqrt(rank) if rslora else mod_alpha / rank
        a[(layer, module)] = pair["A"].to(torch.float32).t().contiguous().to(dtype)
        b[(layer, module)] = (pair["B"].to(torch.float32) * scale).t().contiguous().to(dtype)
    return LoraAdapter(name=name, a=a, b=b)


__all__ = ["ADAPTABLE", "Key", "LoraAdapter", "load_adapter", "read_config"]
