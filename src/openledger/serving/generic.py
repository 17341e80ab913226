"""The generic path: any causal LM the native engine does not run, served by Hugging Face's
own forward with PEFT's adapters, one adapter group per forward.

Requests still share the engine's scheduler (continuous batching, tiers, sampling), but a
step runs one forward per distinct adapter among the running rows (rows of the base model
are one more group, run with the adapters disabled) instead of one forward for all: slower
with many distinct adapters, which ``/v1/models`` says in its warning. Any LoRA variant PEFT
implements for the model's layers works, Conv1D (GPT-2) and DoRA included.

Each request keeps its own keys and values per layer; a group's forward left-pads its
rows' caches into one Hugging Face ``DynamicCache`` with an attention mask and explicit
positions — the layout of HF's batched generation — and splits the result back per row. A
model whose cache is not a list of per-layer key/value tensors is run without a cache (the
whole sequence each step): correct for any causal LM, slow for long outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from openledger.serving.adapters import _invalid, read_config, read_tensors
from openledger.serving.lora import ResidentSlots, SlotResidency, SlotsFull

log = logging.getLogger(__name__)

_PREFIX = "base_model.model."
_SUFFIXES = (".lora_A.weight", ".lora_B.weight", ".lora_magnitude_vector")

WARNING = (
    "served by the generic path (Hugging Face forward with PEFT adapters, one forward per "
    "distinct adapter in a batch): {model_type} is not one of the engine's native "
    "architectures, so mixed-adapter batches run slower"
)


@dataclass(frozen=True)
class GenericFit:
    """The base's adaptable layers by module path, for checking an adapter before use."""

    model_type: str
    shapes: dict[str, tuple[int, int]]  # module path -> (in, out)
    max_rank: int = 64


@dataclass(frozen=True)
class RawAdapter:
    """A PEFT adapter as read from disk: its config and state dict (checked)."""

    name: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def linear_shapes(model: nn.Module) -> dict[str, tuple[int, int]]:
    """(in, out) of every Linear and Conv1D layer, by module path (``model.`` paths as PEFT
    saves them)."""
    from transformers.pytorch_utils import Conv1D

    shapes: dict[str, tuple[int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            shapes[name] = (module.in_features, module.out_features)
        elif isinstance(module, Conv1D):
            shapes[name] = (module.weight.shape[0], module.weight.shape[1])
    return shapes


def load_raw_adapter(
    name: str, path: Path, *, fit: GenericFit, dtype: torch.dtype = torch.float32
) -> RawAdapter:
    """Read a PEFT LoRA directory and check every tensor against the base's layers."""
    cfg = read_config(name, path, allow_conv1d=True)
    tensors = read_tensors(name, path)
    file = path / "adapter_model.safetensors"
    if not tensors:
        raise _invalid(name, file, "it holds no LoRA weights", "re-publish the model.")
    ranks: dict[str, int] = {}
    for key, tensor in tensors.items():
        suffix = next((s for s in _SUFFIXES if key.endswith(s)), None)
        if suffix is None or not key.startswith(_PREFIX):
            raise _invalid(
                name,
                file,
                f"it holds the tensor {key!r}, which is not a LoRA weight",
                "re-save the adapter with PEFT's save_pretrained.",
            )
        module = key[len(_PREFIX) : -len(suffix)]
        if module not in fit.shapes:
            raise _invalid(
                name,
                file,
                f"the tensor {key!r} adapts {module!r}, which this base ({fit.model_type}) "
                "does not have",
                "serve it on the base it was trained for.",
            )
        d_in, d_out = fit.shapes[module]
        if suffix == ".lora_A.weight":
            rank = tensor.shape[0]
            ok = tuple(tensor.shape) == (rank, d_in)
            ranks[module] = rank
        elif suffix == ".lora_B.weight":
            ok = tensor.ndim == 2 and tensor.shape[0] == d_out
        else:
            ok = tuple(tensor.shape) == (d_out,)
        if not ok:
            raise _invalid(
                name,
                file,
                f"{key} has shape {tuple(tensor.shape)}; this base's {module} maps "
                f"{d_in} → {d_out}",
                "serve it on the base it was trained for (this adapter was trained on "
                "another base).",
            )
        if suffix == ".lora_A.weight" and tensor.shape[0] > fit.max_rank:
            raise _invalid(
                name,
                file,
                f"{module} has rank {tensor.shape[0]}, above the engine's limit of {fit.max_rank}",
                f"retrain with a rank of {fit.max_rank} or less, or raise [serve] max_lora_rank.",
            )
    for key, tensor in tensors.items():
        if key.endswith(".lora_B.weight"):
            module = key[len(_PREFIX) : -len(".lora_B.weight")]
            if ranks.get(module) != tensor.shape[1]:
                raise _invalid(
                    name,
                    file,
                    f"{module}: lora_A and lora_B do not pair",
                    "re-save the adapter with PEFT's save_pretrained.",
                )
    return RawAdapter(name, cfg, {k: v.to(dtype) for k, v in tensors.items()})


class PeftSlots(ResidentSlots):
    """The generic path's device tier: adapters loaded into the model by PEFT under slot
    names (``s1`` … ``sK``), reused least-recently-used among unpinned slots."""

    def __init__(self, capacity: int, model: nn.Module) -> None:
        self.capacity = capacity
        self.model = model
        self.peft: Any = None  # the PeftModel, once the first adapter arrives
        self.residency = SlotResidency(capacity)
        self.dtype = next(model.parameters()).dtype

    def _write(self, slot: int, adapter: RawAdapter) -> None:
        from peft import LoraConfig, get_peft_model
        from peft.utils import set_peft_model_state_dict

        keys = {
            "r",
            "lora_alpha",
            "target_modules",
            "use_rslora",
            "use_dora",
            "rank_pattern",
            "alpha_pattern",
            "fan_in_fan_out",
            "layers_to_transform",
            "layers_pattern",
        }
        config = LoraConfig(
            **{k: v for k, v in adapter.config.items() if k in keys},
            lora_dropout=0.0,
            inference_mode=True,
        )
        name = f"s{slot}"
        if self.peft is None:
            self.peft = get_peft_model(
                self.model, config, adapter_name=name, low_cpu_mem_usage=True
            )
        else:
            if name in self.peft.peft_config:
                self.peft.delete_adapter(name)
            self.peft.add_adapter(name, config, low_cpu_mem_usage=True)
        set_peft_model_state_dict(
            self.peft, adapter.tensors, adapter_name=name, low_cpu_mem_usage=True
        )
        self.peft.eval()

    @property
    def nbytes(self) -> int:
        if self.peft is None:
            return 0
        return sum(
            p.numel() * p.element_size() for n, p in self.peft.named_parameters() if "lora_" in n
        )

    def forward(self, slot: int, **inputs: Any) -> Any:
        """The model's forward with slot ``slot``'s adapter (0: none)."""
        if self.peft is None:
            return self.model(**inputs)
        if slot == 0:
            with self.peft.disable_adapter():
                return self.model(**inputs)
        self.peft.base_model.set_adapter(f"s{slot}")
        return self.model(**inputs)


class GenericModel:
    """Prefill and decode through Hugging Face's forward, one forward per adapter group."""

    def __init__(
        self, hf_model: nn.Module, *, max_batch: int, max_ctx: int | None = None, slots: PeftSlots
    ) -> None:
        self.hf = hf_model
        self.slots = slots
        cfg = hf_model.config
        self.model_type = cfg.model_type
        limit = int(
            getattr(cfg, "max_position_embeddings", 0) or getattr(cfg, "n_positions", 0) or 2048
        )
        self.max_ctx = min(limit, max_ctx) if max_ctx else limit
        param = next(hf_model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.max_batch = max_batch
        self.tokens: list[list[int]] = [[] for _ in range(max_batch)]
        self.kv: list[list[tuple[torch.Tensor, torch.Tensor]] | None] = [None] * max_batch
        self.use_cache = True

    def fit(self, max_rank: int) -> GenericFit:
        return GenericFit(self.model_type, linear_shapes(self.hf), max_rank)

    @property
    def kv_bytes(self) -> int:
        return sum(k.numel() * k.element_size() * 2 for row in self.kv if row for k, _ in row)

    def move_row(self, src: int, dst: int, length: int) -> None:
        self.tokens[dst], self.kv[dst] = self.tokens[src], self.kv[src]

    def release_row(self, row: int) -> None:
        self.tokens[row], self.kv[row] = [], None

    # ------------------------------------------------------------------ forward

    @torch.no_grad()
    def prefill(
        self, ids: torch.Tensor, lengths: torch.Tensor, rows: list[int], slots: list[int]
    ) -> torch.Tensor:
        """Whole prompts (right-padded, n × T) into ``rows``; last-token logits n × V."""
        prompts = [ids[i, : int(lengths[i])].tolist() for i in range(ids.shape[0])]
        for row, prompt in zip(rows, prompts, strict=True):
            self.tokens[row], self.kv[row] = list(prompt), None
        return self._run(rows, slots, [len(p) for p in prompts])

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, positions: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """One token for each of rows 0 … n-1; logits n × V."""
        rows = list(range(ids.shape[0]))
        for row, token in zip(rows, ids.tolist(), strict=True):
            self.tokens[row].append(int(token))
        return self._run(rows, slots, [1] * len(rows))

    def _run(self, rows: list[int], slots: list[int], new: list[int]) -> torch.Tensor:
        logits: list[torch.Tensor | None] = [None] * len(rows)
        for slot in sorted(set(slots)):
            members = [i for i, s in enumerate(slots) if s == slot]
            out = self._group([rows[i] for i in members], slot, [new[i] for i in members])
            for i, row_logits in zip(members, out, strict=True):
                logits[i] = row_logits
        return torch.stack(logits)  # type: ignore[arg-type]

    def _group(self, rows: list[int], slot: int, new: list[int]) -> torch.Tensor:
        """One forward for rows that share an adapter; their last-token logits g × V."""
        if self.use_cache:
            try:
                return self._group_cached(rows, slot, new)
            except _NoCache as exc:
                log.warning("generic path: %s; running %s without a KV cache", exc, self.model_type)
                self.use_cache = False
                for row in range(self.max_batch):
                    self.kv[row] = None
        seqs = [self.tokens[r] for r in rows]
        width = max(len(s) for s in seqs)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, s in enumerate(seqs):  # left-padded
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.slots.forward(
            slot,
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            use_cache=False,
        )
        return out.logits[:, -1].float()

    def _group_cached(self, rows: list[int], slot: int, new: list[int]) -> torch.Tensor:
        from transformers import DynamicCache

        g = len(rows)
        past = [len(self.tokens[r]) - k for r, k in zip(rows, new, strict=True)]
        p, t = max(past), max(new)
        ids = torch.zeros(g, t, dtype=torch.long)
        mask = torch.zeros(g, p + t, dtype=torch.long)
        positions = torch.zeros(g, t, dtype=torch.long)
        for i, (r, k) in enumerate(zip(rows, new, strict=True)):
            ids[i, t - k :] = torch.tensor(self.tokens[r][-k:])  # left-padded
            mask[i, p - past[i] : p] = 1
            mask[i, p + t - k :] = 1
            positions[i, t - k :] = torch.arange(past[i], past[i] + k)
        cache = None
        if p:
            cache = DynamicCache()
            first = self.kv[rows[int(torch.tensor(past).argmax())]]
            assert first is not None
            for li, (k0, v0) in enumerate(first):
                keys = k0.new_zeros(g, k0.shape[0], p, k0.shape[-1])  # g × heads × P × hd
                values = v0.new_zeros(g, v0.shape[0], p, v0.shape[-1])
                for i, r in enumerate(rows):
                    kv = self.kv[r]
                    if past[i] and kv is not None:
                        keys[i, :, p - past[i] :] = kv[li][0]
                        values[i, :, p - past[i] :] = kv[li][1]
                cache.update(keys, values, li)
        out = self.slots.forward(
            slot,
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            past_key_values=cache,
            use_cache=True,
        )
        layers = _kv_layers(out.past_key_values, g, p + t)
        for i, (r, k) in enumerate(zip(rows, new, strict=True)):
            # A row is [pads][its past][pads][its k new tokens]; the engine never leaves a
            # gap (prefill: no past; decode: k = 1 for every row), so its cache is one span.
            start = p - past[i] if past[i] else p + t - k
            self.kv[r] = [(kk[i, :, start:].clone(), vv[i, :, start:].clone()) for kk, vv in layers]
        return out.logits[:, -1].float()


class _NoCache(Exception):
    """The model's cache cannot be split and merged per row."""


def _kv_layers(cache: Any, rows: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layers = getattr(cache, "layers", None)
    if not layers:
        raise _NoCache(f"its cache is a {type(cache).__name__}, not per-layer keys and values")
    out = []
    for layer in layers:
        k, v = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not (isinstance(k, torch.Tensor) and isinstance(v, torch.Tensor)) or k.ndim != 4:
            raise _NoCache(f"its cache layer is a {type(layer).__name__}")
        if k.shape[0] != rows or k.shape[2] != length or v.shape[2] != length:
            raise _NoCache(f"its cache holds {tuple(k.shape)} for {rows} rows of {length}")
        out.append((k, v))
    return out


__all__ = [
    "GenericFit",
    "GenericModel",
    "PeftSlots",
    "RawAdapter",
    "SlotsFull",
    "WARNING",
    "linear_shapes",
    "load_raw_adapter",
]
