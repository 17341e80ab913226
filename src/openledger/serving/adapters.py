"""LoRA adapters as the serving engine holds them: read from a PEFT directory, checked
against the served base, and laid out for batched products.

A PEFT LoRA adapter stores, per adapted linear ``W`` (out × in), ``lora_A`` (r × in) and
``lora_B`` (out × r); the adapted layer computes ``W·x + s·B·A·x`` with
``s = alpha / r`` (``alpha / √r`` with rsLoRA). Here each pair becomes

* ``a``: in × r (``Aᵀ``, so a row vector multiplies it directly), and
* ``b``: r × out (``(s·B)ᵀ``, the scale folded in once at load time),

keyed by ``(layer index, module name)``. A DoRA adapter also stores a magnitude ``m`` (out)
per linear; its layer computes ``m / ‖W + s·BA‖ ⊙ (W·x + s·B·A·x)`` (norm per output row),
so the factor ``g = m / ‖W + s·BA‖`` is computed once at load from the base weight and kept
as ``dora`` (out). Variants whose forward is not of that form (LoRA biases, extra trained
modules) are refused with a message that says so.

Every tensor is checked against the base it will be served on (:class:`BaseFit`): each
module must exist in that architecture, each shape must match the base's linear, the rank
must be within the engine's limit; a mismatch names the file, the tensor and both shapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from openledger.errors import NotFoundError, ValidationError
from openledger.serving.arch import ALL_TARGETS, block_of
from openledger.serving.lora_ops import dora_magnitude_scale

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
DEFAULT_MAX_RANK = 64

#: The linears of a Llama-style decoder layer (kept for callers that list them).
ADAPTABLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_KEY = re.compile(
    r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector)$"
)
_PART = {"lora_A.weight": "A", "lora_B.weight": "B", "lora_magnitude_vector": "M"}

Key = tuple[int, str]  # (layer index, module name)


@dataclass(frozen=True)
class BaseFit:
    """What an adapter must fit to be served on a base: its adaptable linears.

    ``weight(layer, module)`` gives the base weight (out × in) for DoRA's factor; without
    it a DoRA adapter is checked but its factor is not computed (``dora`` stays empty).
    """

    model_type: str
    layers: int
    shapes: dict[str, tuple[int, int]]  # module name -> (in, out)
    max_rank: int = DEFAULT_MAX_RANK
    weight: Callable[[int, str], torch.Tensor] | None = None


@dataclass(frozen=True)
class LoraAdapter:
    """One adapter's weights, ready to copy into a device slot."""

    name: str
    a: dict[Key, torch.Tensor]  # in × r
    b: dict[Key, torch.Tensor]  # r × out, scale folded in
    dora: dict[Key, torch.Tensor] = field(default_factory=dict)  # out: m / ‖W + s·BA‖

    @property
    def max_rank(self) -> int:
        return max(t.shape[1] for t in self.a.values())

    @property
    def nbytes(self) -> int:
        tensors = (*self.a.values(), *self.b.values(), *self.dora.values())
        return sum(t.numel() * t.element_size() for t in tensors)

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


def read_config(name: str, path: Path, *, allow_conv1d: bool = False) -> dict:
    """``adapter_config.json``, checked to be a LoRA variant the engine computes exactly
    (``allow_conv1d``: the generic path, where PEFT runs GPT-2's Conv1D layers)."""
    cfg_path = path / ADAPTER_CONFIG
    if not cfg_path.is_file() or not (path / ADAPTER_WEIGHTS).is_file():
        raise NotFoundError(
            f"adapter {name!r}: {str(path)!r} holds no {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}.",
            field="adapter",
            value=name,
            fix="re-publish the model, or restore its directory.",
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(
            name,
            cfg_path,
            f"{ADAPTER_CONFIG} is not valid JSON ({exc})",
            "re-save the adapter with PEFT's save_pretrained.",
        ) from exc
    if not isinstance(cfg, dict):
        raise _invalid(
            name,
            cfg_path,
            f"{ADAPTER_CONFIG} is not a JSON object",
            "re-save the adapter with PEFT's save_pretrained.",
        )
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        raise _invalid(
            name,
            cfg_path,
            f"it is a {cfg.get('peft_type')} adapter, not LoRA",
            "serve LoRA or DoRA adapters (the Model Factory's methods lora or dora).",
        )
    unsupported = [
        (bool(cfg.get("lora_bias")), "it trains LoRA biases"),
        (bool(cfg.get("modules_to_save")), "it saves whole modules besides the LoRA pairs"),
        (
            bool(cfg.get("fan_in_fan_out")) and not allow_conv1d,
            "it uses fan_in_fan_out (Conv1D) layers",
        ),
        (cfg.get("bias", "none") != "none", f"it trains biases (bias={cfg.get('bias')!r})"),
    ]
    for bad, what in unsupported:
        if bad:
            raise _invalid(
                name,
                cfg_path,
                what,
                "merge it into a base model with PEFT's "
                "merge_and_unload and serve that, or retrain with the method lora.",
            )
    return cfg


def read_tensors(name: str, path: Path) -> dict[str, torch.Tensor]:
    """The safetensors file, or an error naming it (truncated, corrupt, not safetensors)."""
    file = path / ADAPTER_WEIGHTS
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise _invalid(
            name,
            file,
            f"{ADAPTER_WEIGHTS} cannot be read ({exc})",
            "re-publish the model; the file is damaged.",
        ) from exc


def load_adapter(
    name: str,
    path: Path,
    *,
    dtype: torch.dtype = torch.float32,
    fit: BaseFit | None = None,
) -> LoraAdapter:
    """Read and check a PEFT LoRA (or DoRA) directory (disk → host tier).

    With ``fit`` every tensor is checked against the served base (module, layer, shape,
    rank); without it only against itself.
    """
    cfg = read_config(name, path)
    tensors = read_tensors(name, path)
    file = path / ADAPTER_WEIGHTS
    alpha = float(cfg.get("lora_alpha", cfg.get("r", 8)))
    rslora = bool(cfg.get("use_rslora"))
    alpha_pattern = cfg.get("alpha_pattern") or {}
    parts: dict[Key, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        m = _KEY.search(key)
        if m is None:
            raise _invalid(
                name,
                file,
                f"it holds the tensor {key!r}, which is not a LoRA pair of a decoder-layer linear",
                "serve adapters of the attention and MLP projections only.",
            )
        layer, module, part = int(m.group(1)), m.group(2), _PART[m.group(3)]
        _check_module(name, file, key, layer, module, fit)
        parts.setdefault((layer, module), {})[part] = tensor
    if not parts:
        raise _invalid(name, file, "it holds no LoRA weights", "re-publish the model.")
    a: dict[Key, torch.Tensor] = {}
    b: dict[Key, torch.Tensor] = {}
    dora: dict[Key, torch.Tensor] = {}
    for (layer, module), pair in sorted(parts.items()):
        if not {"A", "B"} <= set(pair) or pair["A"].shape[0] != pair["B"].shape[1]:
            raise _invalid(
                name,
                file,
                f"layer {layer} {module}: lora_A and lora_B do not pair",
                "re-save the adapter with PEFT's save_pretrained.",
            )
        _check_shapes(name, file, layer, module, pair, fit)
        rank = pair["A"].shape[0]
        module_path = f"model.layers.{layer}.{block_of(module)}.{module}"
        mod_alpha = _pattern_value(alpha_pattern, module_path, alpha)
        scale = mod_alpha / math.sqrt(rank) if rslora else mod_alpha / rank
        a32 = pair["A"].to(torch.float32).t().contiguous()  # in × r
        b32 = (pair["B"].to(torch.float32) * scale).t().contiguous()  # r × out
        if "M" in pair and fit is not None and fit.weight is not None:
            weight = fit.weight(layer, module)
            dora[(layer, module)] = dora_magnitude_scale(weight, a32, b32, pair["M"]).to(
                "cpu", dtype
            )
        a[(layer, module)] = a32.to(dtype)
        b[(layer, module)] = b32.to(dtype)
    if bool(cfg.get("use_dora")) and fit is not None and fit.weight is not None and not dora:
        raise _invalid(
            name,
            file,
            "its config says DoRA but it holds no magnitude vectors",
            "re-save the adapter with PEFT's save_pretrained.",
        )
    return LoraAdapter(name=name, a=a, b=b, dora=dora)


def _check_module(
    name: str, file: Path, key: str, layer: int, module: str, fit: BaseFit | None
) -> None:
    known = fit.shapes if fit is not None else dict.fromkeys(ALL_TARGETS)
    if module not in known:
        where = f"this base ({fit.model_type})" if fit is not None else "the engine"
        raise _invalid(
            name,
            file,
            f"the tensor {key!r} adapts {module!r}, which {where} does not have",
            f"serve adapters of {', '.join(known)} only (train with target_modules naming "
            "those), or serve it on the base it was trained for.",
        )
    if fit is not None and layer >= fit.layers:
        raise _invalid(
            name,
            file,
            f"the tensor {key!r} is for layer {layer}; this base ({fit.model_type}) has "
            f"{fit.layers} layers",
            "serve it on the base it was trained for.",
        )


def _check_shapes(
    name: str,
    file: Path,
    layer: int,
    module: str,
    pair: dict[str, torch.Tensor],
    fit: BaseFit | None,
) -> None:
    rank = pair["A"].shape[0]
    if fit is None:
        return
    d_in, d_out = fit.shapes[module]
    expected = {"A": (rank, d_in), "B": (d_out, rank), "M": (d_out,)}
    for part, tensor in pair.items():
        if tuple(tensor.shape) != expected[part]:
            label = {"A": "lora_A", "B": "lora_B", "M": "lora_magnitude_vector"}[part]
            raise _invalid(
                name,
                file,
                f"layer {layer} {module}.{label} has shape {tuple(tensor.shape)}; this base "
                f"({fit.model_type}, {module} {d_in} → {d_out}) needs {expected[part]}",
                "serve it on the base it was trained for (this adapter was trained on "
                "another base).",
            )
    if rank > fit.max_rank:
        raise _invalid(
            name,
            file,
            f"layer {layer} {module} has rank {rank}, above the engine's limit of {fit.max_rank}",
            f"retrain with a rank of {fit.max_rank} or less, or raise [serve] max_lora_rank.",
        )


__all__ = [
    "ADAPTABLE",
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "BaseFit",
    "DEFAULT_MAX_RANK",
    "Key",
    "LoraAdapter",
    "load_adapter",
    "read_config",
    "read_tensors",
]
