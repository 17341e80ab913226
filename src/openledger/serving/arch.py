"""What the engine knows about the decoder architectures it runs natively.

A native architecture is a pre-norm decoder whose layers are attention (q, k, v, o) and a
gated MLP (gate, up, down), with rotary positions. They differ in a few switches, which
:class:`ArchSpec` names, and in sizes, which :class:`DecoderShape` reads from the Hugging
Face config. Every adapted linear belongs to one of four *groups* per layer, each computed
as one GEMM of the base model:

=========  ================================  ==============================================
group      input                             output slices (adapter targets)
=========  ================================  ==============================================
qkv        the attention input (hidden)      q_proj, k_proj, v_proj (Phi-3: qkv_proj)
o          the attention output (heads·hd)   o_proj
gate_up    the MLP input (hidden)            gate_proj, up_proj (Phi-3: gate_up_proj)
down       the gated activation (inter)      down_proj
=========  ================================  ==============================================

An adapter targets slices; its LoRA is added to its slice of the group's output, as vLLM's
punica wrapper does for merged column-parallel layers. Any other causal LM is served by
:mod:`openledger.serving.generic` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArchSpec:
    """The switches that tell one native architecture from another."""

    model_type: str
    fused_qkv: bool = False  # the base holds q, k, v as one qkv_proj (Phi-3)
    fused_gate_up: bool = False  # the base holds gate, up as one gate_up_proj (Phi-3)
    qk_norm: bool = False  # an RMSNorm over head_dim on q and k before rotary (Qwen3, Gemma 3)
    sandwich_norm: bool = False  # norms after attention and around the MLP (Gemma 2/3)
    bidirectional_flag: str | None = None  # a config flag that makes attention non-causal

    @property
    def targets(self) -> tuple[str, ...]:
        """The adapter module names this architecture can serve, in layer order."""
        qkv = ("qkv_proj",) if self.fused_qkv else ("q_proj", "k_proj", "v_proj")
        gate_up = ("gate_up_proj",) if self.fused_gate_up else ("gate_proj", "up_proj")
        return (*qkv, "o_proj", *gate_up, "down_proj")


NATIVE: dict[str, ArchSpec] = {
    spec.model_type: spec
    for spec in (
        ArchSpec("llama"),
        ArchSpec("mistral"),
        ArchSpec("qwen2"),
        ArchSpec("qwen3", qk_norm=True),
        ArchSpec("gemma2", sandwich_norm=True),
        ArchSpec(
            "gemma3_text",
            qk_norm=True,
            sandwich_norm=True,
            bidirectional_flag="use_bidirectional_attention",
        ),
        ArchSpec("phi3", fused_qkv=True, fused_gate_up=True),
    )
}

#: Every module name a native architecture may adapt.
ALL_TARGETS = (
    "q_proj",
    "k_proj",
    "v_proj",
    "qkv_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "gate_up_proj",
    "down_proj",
)
_MLP_TARGETS = {"gate_proj", "up_proj", "gate_up_proj", "down_proj"}


def block_of(target: str) -> str:
    """The decoder-layer submodule that holds ``target`` (``self_attn`` or ``mlp``)."""
    return "mlp" if target in _MLP_TARGETS else "self_attn"


def native_spec(config: Any) -> ArchSpec | None:
    """The spec of a config the engine runs natively; None for the generic path."""
    spec = NATIVE.get(getattr(config, "model_type", ""))
    if spec is None:
        return None
    if spec.bidirectional_flag and getattr(config, spec.bidirectional_flag, False):
        return None
    return spec


@dataclass(frozen=True)
class Slice:
    """One adapter target inside a group's output: columns ``offset`` … ``offset + size``."""

    target: str
    offset: int
    size: int


@dataclass(frozen=True)
class Group:
    """The linears of a layer computed as one GEMM over the same input."""

    name: str  # qkv | o | gate_up | down
    d_in: int
    slices: tuple[Slice, ...]

    @property
    def d_out(self) -> int:
        return sum(s.size for s in self.slices)


@dataclass(frozen=True)
class DecoderShape:
    """The sizes and per-layer attention options of a native model (read from its config)."""

    model_type: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    windows: tuple[int | None, ...]  # sliding window per layer (None: full attention)
    layer_types: tuple[str, ...] | None  # per-layer rotary table (Gemma 3), else None
    attn_softcap: float | None  # tanh soft-capping of attention scores (Gemma 2)
    final_softcap: float | None  # tanh soft-capping of the logits (Gemma 2)

    @classmethod
    def from_config(cls, config: Any) -> DecoderShape:
        heads = int(config.num_attention_heads)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        layers = int(config.num_hidden_layers)
        types = getattr(config, "layer_types", None)
        window = getattr(config, "sliding_window", None)
        if types is not None:
            windows = tuple(window if t == "sliding_attention" else None for t in types[:layers])
        else:
            windows = (window,) * layers
        rope = getattr(config, "rope_parameters", None)
        per_type_rope = isinstance(rope, dict) and types is not None and set(types) <= set(rope)
        return cls(
            model_type=config.model_type,
            layers=layers,
            hidden=int(config.hidden_size),
            intermediate=int(config.intermediate_size),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(head_dim),
            vocab=int(config.vocab_size),
            max_positions=int(config.max_position_embeddings),
            windows=windows,
            layer_types=tuple(types[:layers]) if per_type_rope else None,
            attn_softcap=getattr(config, "attn_logit_softcapping", None)
            if config.model_type == "gemma2"
            else None,
            final_softcap=getattr(config, "final_logit_softcapping", None),
        )

    def groups(self, spec: ArchSpec) -> tuple[Group, ...]:
        """The four groups of a layer with their slices (the same in every layer)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        i, h = self.intermediate, self.hidden
        if spec.fused_qkv:
            qkv = (Slice("qkv_proj", 0, q + 2 * kv),)
        else:
            qkv = (Slice("q_proj", 0, q), Slice("k_proj", q, kv), Slice("v_proj", q + kv, kv))
        if spec.fused_gate_up:
            gate_up = (Slice("gate_up_proj", 0, 2 * i),)
        else:
            gate_up = (Slice("gate_proj", 0, i), Slice("up_proj", i, i))
        return (
            Group("qkv", h, qkv),
            Group("o", q, (Slice("o_proj", 0, h),)),
            Group("gate_up", h, gate_up),
            Group("down", i, (Slice("down_proj", 0, h),)),
        )

    def target_shapes(self, spec: ArchSpec) -> dict[str, tuple[int, int]]:
        """(in, out) of every adaptable linear."""
        return {s.target: (g.d_in, s.size) for g in self.groups(spec) for s in g.slices}


__all__ = [
    "ALL_TARGETS",
    "ArchSpec",
    "DecoderShape",
    "Group",
    "NATIVE",
    "Slice",
    "block_of",
    "native_spec",
]
