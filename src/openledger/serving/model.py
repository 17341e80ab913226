"""The base model's forward pass for serving: a Llama-style decoder over a slot KV cache,
with the batched multi-LoRA product in every adapted linear.

The weights are the Hugging Face model's own modules (embeddings, norms, projections, rotary
tables), loaded once and never copied; only the attention and the cache are ours, because
continuous batching needs each request's keys and values in its own cache row:

    cache K, V per layer: max_batch × kv_heads × max_ctx × head_dim

Running requests occupy rows 0 … n-1 (the engine keeps them compact), so a decode step
attends over ``cache[:n, :, :L]`` with a per-row length mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from openledger.errors import ValidationError
from openledger.serving.lora import LoraSlots

SUPPORTED = ("llama", "mistral", "qwen2")


@dataclass(frozen=True)
class Dims:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int
    max_ctx: int


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class EngineModel:
    """Prefill and decode for a batch of requests that may each use another adapter."""

    def __init__(
        self, hf_model: nn.Module, *, max_batch: int, max_ctx: int | None = None, lora: LoraSlots
    ) -> None:
        check_architecture(hf_model)
        cfg = hf_model.config
        self.hf = hf_model
        self.body = hf_model.model
        self.lm_head = hf_model.lm_head
        self.lora = lora
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        limit = int(cfg.max_position_embeddings)
        self.dims = Dims(
            layers=cfg.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            hidden=cfg.hidden_size,
            vocab=cfg.vocab_size,
            max_ctx=min(limit, max_ctx) if max_ctx else limit,
        )
        param = next(hf_model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.max_batch = max_batch
        d = self.dims
        shape = (max_batch, d.kv_heads, d.max_ctx, d.head_dim)
        self.k_cache = [
            torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(d.layers)
        ]
        self.v_cache = [torch.zeros_like(k) for k in self.k_cache]
        with torch.no_grad():
            positions = torch.arange(d.max_ctx, device=self.device)[None]
            probe = torch.zeros(1, device=self.device, dtype=self.dtype)
            cos, sin = self.body.rotary_emb(probe, positions)  # 1 × ctx × head_dim
        self.cos, self.sin = cos[0], sin[0]
        self.scale = head_dim**-0.5
        self._fuse_projections()

    def _fuse_projections(self) -> None:
        """One GEMM for q, k, v and one for gate, up per layer (fewer, larger products).

        The fused weight is the only copy: each projection's weight becomes a view of it, so
        the model keeps working as a Hugging Face module and no memory is added.
        """
        self.qkv: list[tuple[torch.Tensor, torch.Tensor | None, list[int]]] = []
        self.gate_up: list[tuple[torch.Tensor, torch.Tensor | None, list[int]]] = []
        for layer in self.body.layers:
            a, m = layer.self_attn, layer.mlp
            self.qkv.append(_fuse([a.q_proj, a.k_proj, a.v_proj]))
            self.gate_up.append(_fuse([m.gate_proj, m.up_proj]))

    @property
    def kv_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.k_cache, *self.v_cache))

    # ------------------------------------------------------------------ cache rows

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy a request's cache from row ``src`` to row ``dst`` (to keep rows compact)."""
        for k, v in zip(self.k_cache, self.v_cache, strict=True):
            k[dst, :, :length].copy_(k[src, :, :length])
            v[dst, :, :length].copy_(v[src, :, :length])

    # ------------------------------------------------------------------ forward

    def _linear(self, layer: int, name: str, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return self.lora.apply((layer, name), x, module(x))

    def _layers(
        self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attend
    ) -> torch.Tensor:  # noqa: ANN001
        d = self.dims
        n, t, _ = h.shape
        for li, layer in enumerate(self.body.layers):
            attn, mlp = layer.self_attn, layer.mlp
            x = layer.input_layernorm(h)
            w, b, sizes = self.qkv[li]
            q, k, v = (t.contiguous() for t in F.linear(x, w, b).split(sizes, dim=-1))
            q = self.lora.apply((li, "q_proj"), x, q).view(n, t, d.heads, d.head_dim)
            k = self.lora.apply((li, "k_proj"), x, k).view(n, t, d.kv_heads, d.head_dim)
            v = self.lora.apply((li, "v_proj"), x, v).view(n, t, d.kv_heads, d.head_dim)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # n × heads × t × hd
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            o = attend(li, q, k, v)  # n × heads × t × hd
            o = o.transpose(1, 2).reshape(n, t, d.heads * d.head_dim)
            h = h + self._linear(li, "o_proj", attn.o_proj, o)
            x = layer.post_attention_layernorm(h)
            w, b, sizes = self.gate_up[li]
            gate, up = (t.contiguous() for t in F.linear(x, w, b).split(sizes, dim=-1))
            gate = self.lora.apply((li, "gate_proj"), x, gate)
            up = self.lora.apply((li, "up_proj"), x, up)
            h = h + self._linear(li, "down_proj", mlp.down_proj, mlp.act_fn(gate) * up)
        return self.body.norm(h)

    @torch.no_grad()
    def prefill(
        self, ids: torch.Tensor, lengths: torch.Tensor, rows: list[int], slots: list[int]
    ) -> torch.Tensor:
        """Run whole prompts (right-padded, n × T) into cache ``rows``; last-token logits n × V."""
        n, t = ids.shape
        self.lora.prepare(slots)
        cos, sin = self.cos[:t][None, None], self.sin[:t][None, None]  # 1 × 1 × T × hd
        row_idx = torch.tensor(rows, device=self.device)

        def attend(li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            self.k_cache[li][row_idx, :, :t] = k
            self.v_cache[li][row_idx, :, :t] = v
            return F.scaled_dot_product_attention(
                q,
                k,
                v,
                is_causal=True,
                scale=self.scale,
                enable_gqa=self.dims.kv_heads != self.dims.heads,
            )

        h = self._layers(self.body.embed_tokens(ids), cos, sin, attend)
        last = h[torch.arange(n, device=self.device), lengths - 1]  # n × hidden
        return self.lm_head(last).float()

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, positions: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """One token for each of rows 0 … n-1 at ``positions`` (n); logits n × V."""
        n = ids.shape[0]
        self.lora.prepare(slots)
        span = int(positions.max()) + 1
        cos = self.cos[positions][:, None, None]  # n × 1 × 1 × hd
        sin = self.sin[positions][:, None, None]
        rows = torch.arange(n, device=self.device)
        d = self.dims
        kv_heads, head_dim, groups = d.kv_heads, d.head_dim, d.heads // d.kv_heads
        visible = torch.arange(span, device=self.device)[None] <= positions[:, None]  # n × L
        bias = torch.zeros(visible.shape, dtype=self.dtype, device=self.device)
        bias = bias.masked_fill_(~visible, float("-inf"))[:, None, None]  # n × 1 × 1 × L

        def attend(li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            kc, vc = self.k_cache[li], self.v_cache[li]
            kc[rows, :, positions] = k[:, :, 0]
            vc[rows, :, positions] = v[:, :, 0]
            # One query per row: two batched matmuls beat SDPA's masked path here.
            q = q.view(n, kv_heads, groups, head_dim)
            scores = torch.matmul(q, kc[:n, :, :span].transpose(-1, -2))  # n × kvh × g × L
            probs = torch.softmax(scores * self.scale + bias, dim=-1)
            out = torch.matmul(probs, vc[:n, :, :span])  # n × kvh × g × hd
            return out.view(n, d.heads, 1, head_dim)

        h = self._layers(self.body.embed_tokens(ids[:, None]), cos, sin, attend)
        return self.lm_head(h[:, 0]).float()


def check_architecture(hf_model: nn.Module) -> None:
    model_type = hf_model.config.model_type
    if model_type not in SUPPORTED:
        raise ValidationError(
            f"the serving engine runs {', '.join(SUPPORTED)} models, not {model_type!r}.",
            field="base",
            value=model_type,
            fix="serve a Llama-architecture base model (Llama, Mistral, Qwen2).",
        )


def linear_shapes(hf_model: nn.Module) -> dict[str, tuple[int, int]]:
    """(in, out) of each adaptable linear, read from the first decoder layer."""
    check_architecture(hf_model)
    layer = hf_model.model.layers[0]
    attn = {n: getattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")}
    mlp = {n: getattr(layer.mlp, n) for n in ("gate_proj", "up_proj", "down_proj")}
    return {n: (m.in_features, m.out_features) for n, m in {**attn, **mlp}.items()}


def _fuse(linears: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
    sizes = [lin.out_features for lin in linears]
    weight = torch.cat([lin.weight.detach() for lin in linears])  # Σout × in
    has_bias = [lin.bias is not None for lin in linears]
    bias = None
    if any(has_bias):
        bias = torch.cat(
            [
                lin.bias.detach()
                if lin.bias is not None
                else torch.zeros(lin.out_features, dtype=weight.dtype, device=weight.device)
                for lin in linears
            ]
        )
    start = 0
    for lin, size in zip(linears, sizes, strict=True):
        lin.weight.data = weight[start : start + size]
        if lin.bias is not None and bias is not None:
            lin.bias.data = bias[start : start + size]
        start += size
    return weight, bias, sizes


__all__ = ["Dims", "EngineModel", "SUPPORTED", "linear_shapes"]
