"""The base model's forward pass for serving: a native decoder over a slot KV cache, with
the batched multi-LoRA product in every adapted group of linears.

The weights are the Hugging Face model's own modules (embeddings, norms, projections, rotary
tables), loaded once and never copied; only the attention and the cache are ours, because
continuous batching needs each request's keys and values in its own cache row:

    cache K, V per layer: max_batch × kv_heads × max_ctx × head_dim

Running requests occupy rows 0 … n-1 (the engine keeps them compact), so a decode step
attends over ``cache[:n, :, :L]`` with a per-row length mask (and a sliding window on the
layers that have one). Architectures: :mod:`openledger.serving.arch`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from openledger.errors import ValidationError
from openledger.serving.adapters import BaseFit
from openledger.serving.arch import NATIVE, ArchSpec, DecoderShape, native_spec
from openledger.serving.lora import LoraSlots

SUPPORTED = tuple(NATIVE)

Attend = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions on the first ``cos.shape[-1]`` dims (all of them unless partial)."""
    d = cos.shape[-1]
    if d == x.shape[-1]:
        return x * cos + _rotate_half(x) * sin
    rot, rest = x[..., :d], x[..., d:]
    return torch.cat((rot * cos + _rotate_half(rot) * sin, rest), dim=-1)


def _softcap(scores: torch.Tensor, cap: float | None) -> torch.Tensor:
    return scores if cap is None else torch.tanh(scores / cap) * cap


def _fuse(linears: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One weight (Σout × in) for linears that share an input; each linear's weight becomes
    a view of it, so the model keeps working as a Hugging Face module and no memory is
    added. A single linear is returned as it is."""
    if len(linears) == 1:
        lin = linears[0]
        return lin.weight.detach(), None if lin.bias is None else lin.bias.detach()
    weight = torch.cat([lin.weight.detach() for lin in linears])  # Σout × in
    bias = None
    if any(lin.bias is not None for lin in linears):
        bias = torch.cat(
            [
                lin.bias.detach()
                if lin.bias is not None
                else torch.zeros(lin.out_features, dtype=weight.dtype, device=weight.device)
                for lin in linears
            ]
        )
    start = 0
    for lin in linears:
        size = lin.out_features
        lin.weight.data = weight[start : start + size]
        if lin.bias is not None and bias is not None:
            lin.bias.data = bias[start : start + size]
        start += size
    return weight, bias


class EngineModel:
    """Prefill and decode for a batch of requests that may each use another adapter."""

    def __init__(
        self,
        hf_model: nn.Module,
        *,
        max_batch: int,
        max_ctx: int | None = None,
        lora: LoraSlots | None,
    ) -> None:
        self.spec = check_architecture(hf_model)
        self.shape = shape = DecoderShape.from_config(hf_model.config)
        self.hf = hf_model
        self.body = hf_model.model
        self.lm_head = hf_model.lm_head
        self.lora: LoraSlots = lora  # type: ignore[assignment]  # set by the engine if None
        self.max_ctx = min(shape.max_positions, max_ctx) if max_ctx else shape.max_positions
        param = next(hf_model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.max_batch = max_batch
        cache = (max_batch, shape.kv_heads, self.max_ctx, shape.head_dim)
        self.k_cache = [
            torch.zeros(cache, dtype=self.dtype, device=self.device) for _ in range(shape.layers)
        ]
        self.v_cache = [torch.zeros_like(k) for k in self.k_cache]
        self._rope_tables()
        self.scales = [float(layer.self_attn.scaling) for layer in self.body.layers]
        self._fuse_projections()

    def _rope_tables(self) -> None:
        """cos, sin (max_ctx × rotary dims) per rotary table (one per layer type: Gemma 3)."""
        with torch.no_grad():
            positions = torch.arange(self.max_ctx, device=self.device)[None]
            probe = torch.zeros(1, device=self.device, dtype=self.dtype)
            types = self.shape.layer_types
            if types is None:
                cos, sin = self.body.rotary_emb(probe, positions)  # 1 × ctx × rot
                self.rope = {"": (cos[0], sin[0])}
                self.rope_of = [""] * self.shape.layers
            else:
                self.rope = {}
                for t in sorted(set(types)):
                    cos, sin = self.body.rotary_emb(probe, positions, t)
                    self.rope[t] = (cos[0], sin[0])
                self.rope_of = list(types)

    def _fuse_projections(self) -> None:
        """One GEMM for q, k, v and one for gate, up per layer (fewer, larger products);
        Phi-3 stores them fused already."""
        self.qkv: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        self.gate_up: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for layer in self.body.layers:
            a, m = layer.self_attn, layer.mlp
            if self.spec.fused_qkv:
                self.qkv.append(_fuse([a.qkv_proj]))
            else:
                self.qkv.append(_fuse([a.q_proj, a.k_proj, a.v_proj]))
            if self.spec.fused_gate_up:
                self.gate_up.append(_fuse([m.gate_up_proj]))
            else:
                self.gate_up.append(_fuse([m.gate_proj, m.up_proj]))

    def weight(self, layer: int, target: str) -> torch.Tensor:
        """The base weight (out × in) of an adaptable linear (DoRA's norm needs it)."""
        block = self.body.layers[layer]
        return getattr(
            block.mlp
            if target in ("gate_proj", "up_proj", "gate_up_proj", "down_proj")
            else block.self_attn,
            target,
        ).weight.detach()

    def fit(self, max_rank: int) -> BaseFit:
        """What adapters of this base must fit (shapes, layers, rank limit, DoRA weights)."""
        return BaseFit(
            self.shape.model_type,
            self.shape.layers,
            self.shape.target_shapes(self.spec),
            max_rank,
            self.weight,
        )

    @property
    def kv_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.k_cache, *self.v_cache))

    # ------------------------------------------------------------------ cache rows

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy a request's cache from row ``src`` to row ``dst`` (to keep rows compact)."""
        for k, v in zip(self.k_cache, self.v_cache, strict=True):
            k[dst, :, :length].copy_(k[src, :, :length])
            v[dst, :, :length].copy_(v[src, :, :length])

    def release_row(self, row: int) -> None:
        """A finished request's row: nothing to free (the cache is preallocated)."""

    # ------------------------------------------------------------------ forward

    def _layers(
        self, h: torch.Tensor, rope: dict[str, tuple[torch.Tensor, torch.Tensor]], attend: Attend
    ) -> torch.Tensor:
        s, spec, lora = self.shape, self.spec, self.lora
        n, t, _ = h.shape
        q_size, kv_size = s.heads * s.head_dim, s.kv_heads * s.head_dim
        for li, layer in enumerate(self.body.layers):
            attn, mlp = layer.self_attn, layer.mlp
            x = layer.input_layernorm(h)  # n × T × hidden
            w, b = self.qkv[li]
            qkv = lora.apply(li, "qkv", x, F.linear(x, w, b), b)  # n × T × (q + 2·kv)
            q, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
            q = q.reshape(n, t, s.heads, s.head_dim)  # n × T × H × hd
            k = k.reshape(n, t, s.kv_heads, s.head_dim)  # n × T × KV × hd
            v = v.reshape(n, t, s.kv_heads, s.head_dim)
            if spec.qk_norm:
                q, k = attn.q_norm(q), attn.k_norm(k)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # n × H × T × hd
            cos, sin = rope[self.rope_of[li]]
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            o = attend(li, q, k, v)  # n × H × T × hd
            o = o.transpose(1, 2).reshape(n, t, q_size)  # n × T × H·hd
            o_lin = attn.o_proj
            a = lora.apply(li, "o", o, o_lin(o), o_lin.bias)  # n × T × hidden
            if spec.sandwich_norm:
                a = layer.post_attention_layernorm(a)
                x = layer.pre_feedforward_layernorm(h + a)
            else:
                x = layer.post_attention_layernorm(h + a)
            h = h + a
            w, b = self.gate_up[li]
            gu = lora.apply(li, "gate_up", x, F.linear(x, w, b), b)  # n × T × 2·inter
            gate, up = gu.split([s.intermediate, s.intermediate], dim=-1)
            act = getattr(mlp, "act_fn", None) or mlp.activation_fn
            m = act(gate) * up  # n × T × inter
            d = lora.apply(li, "down", m, mlp.down_proj(m), mlp.down_proj.bias)  # n × T × hidden
            if spec.sandwich_norm:
                d = layer.post_feedforward_layernorm(d)
            h = h + d
        return self.body.norm(h)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(h).float()  # n × V
        return _softcap(logits, self.shape.final_softcap)

    @torch.no_grad()
    def prefill(
        self, ids: torch.Tensor, lengths: torch.Tensor, rows: list[int], slots: list[int]
    ) -> torch.Tensor:
        """Run whole prompts (right-padded, n × T) into cache ``rows``; last-token logits n × V."""
        n, t = ids.shape
        self.lora.prepare_prefill(slots)
        rope = {k: (c[:t][None, None], s_[:t][None, None]) for k, (c, s_) in self.rope.items()}
        row_idx = torch.tensor(rows, device=self.device)
        s = self.shape
        groups = s.heads // s.kv_heads
        pos = torch.arange(t, device=self.device)
        causal = pos[None, :] <= pos[:, None]  # T × T, query × key
        masks: dict[int | None, torch.Tensor] = {None: causal}
        for w in set(s.windows) - {None}:
            masks[w] = causal & (pos[None, :] > pos[:, None] - w)

        def attend(li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            self.k_cache[li][row_idx, :, :t] = k  # n × KV × T × hd
            self.v_cache[li][row_idx, :, :t] = v
            window = s.windows[li]
            if s.attn_softcap is None:
                return F.scaled_dot_product_attention(
                    q,
                    k,
                    v,
                    attn_mask=None if window is None else masks[window],
                    is_causal=window is None,
                    scale=self.scales[li],
                    enable_gqa=groups > 1,
                )
            qg = q.view(n, s.kv_heads, groups, t, s.head_dim)  # n × KV × G × T × hd
            scores = qg @ k[:, :, None].transpose(-1, -2) * self.scales[li]  # n × KV × G × T × T
            scores = _softcap(scores, s.attn_softcap).masked_fill(~masks[window], float("-inf"))
            probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
            return (probs @ v[:, :, None]).view(n, s.heads, t, s.head_dim)  # n × H × T × hd

        h = self._layers(self.body.embed_tokens(ids), rope, attend)  # n × T × hidden
        last = h[torch.arange(n, device=self.device), lengths - 1]  # n × hidden
        return self._logits(last)

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, positions: torch.Tensor, slots: list[int]) -> torch.Tensor:
        """One token for each of rows 0 … n-1 at ``positions`` (n); logits n × V."""
        n = ids.shape[0]
        self.lora.prepare(slots)
        span = int(positions.max()) + 1
        rope = {
            k: (c[positions][:, None, None], s_[positions][:, None, None])
            for k, (c, s_) in self.rope.items()
        }  # n × 1 × 1 × rot
        rows = torch.arange(n, device=self.device)
        s = self.shape
        groups = s.heads // s.kv_heads
        key_pos = torch.arange(span, device=self.device)[None]  # 1 × L
        visible = key_pos <= positions[:, None]  # n × L
        biases: dict[int | None, torch.Tensor] = {}
        for w in set(s.windows):
            seen = visible if w is None else visible & (key_pos > positions[:, None] - w)
            bias = torch.zeros(seen.shape, dtype=torch.float32, device=self.device)
            biases[w] = bias.masked_fill_(~seen, float("-inf"))[:, None, None]  # n × 1 × 1 × L

        def attend(li: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            kc, vc = self.k_cache[li], self.v_cache[li]
            kc[rows, :, positions] = k[:, :, 0]
            vc[rows, :, positions] = v[:, :, 0]
            # One query per row: two batched matmuls beat SDPA's masked path here.
            qg = q.view(n, s.kv_heads, groups, s.head_dim)  # n × KV × G × hd
            scores = torch.matmul(qg, kc[:n, :, :span].transpose(-1, -2))  # n × KV × G × L
            scores = _softcap(scores * self.scales[li], s.attn_softcap)
            probs = torch.softmax(scores.float() + biases[s.windows[li]], dim=-1).to(q.dtype)
            out = torch.matmul(probs, vc[:n, :, :span])  # n × KV × G × hd
            return out.view(n, s.heads, 1, s.head_dim)

        h = self._layers(self.body.embed_tokens(ids[:, None]), rope, attend)  # n × 1 × hidden
        return self._logits(h[:, 0])


def check_architecture(hf_model: nn.Module) -> ArchSpec:
    """The native spec of ``hf_model``; ValidationError for the generic path's models."""
    spec = native_spec(hf_model.config)
    if spec is None:
        model_type = hf_model.config.model_type
        raise ValidationError(
            f"the native serving engine runs {', '.join(SUPPORTED)} models, not {model_type!r}.",
            field="base",
            value=model_type,
            fix="serve it through the generic path (openledger.serving.generic), which the "
            "engine picks by itself for other architectures.",
        )
    return spec


__all__ = ["EngineModel", "SUPPORTED", "check_architecture"]
