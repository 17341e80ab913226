"""Per-example gradients of a LoRA adapter's weights, projected to ``k`` dimensions.

Two ways, measured side by side in ``benchmarks/bench_attribution_speed.py``:

- **fused** (the default for plain LoRA): one forward and one backward pass for the whole
  batch. A LoRA layer adds ``s · B(A x)``; with ``z = A x`` (n, t, r) and ``g`` the
  gradient at ``B``'s output (n, t, out, which already carries ``s``), example n's
  gradients are ``G_B[n] = Σ_t g[n,t]ᵀ z[n,t]`` and ``G_A[n] = Σ_t (g[n,t] B)ᵀ x[n,t]``.
  Examples in a batch never interact, so the gradient of the summed loss at each layer's
  output holds every example's own gradient. The per-module projection is applied to
  ``g`` and ``x`` before the sums (it is linear), so the full gradient is never formed.
- **vmap**: ``torch.func.vmap(grad(loss))`` over examples (chunked), for any trainable
  parameters (DoRA's magnitude vectors included); slower, needs eager attention.

The loss of example n is the sum of its token cross-entropies (``reduction="sum"``), the
way it enters the trainer's token-averaged batch loss, or their mean (``"mean"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from openledger.attribution.gradient.projection import ModuleShape, Projection
from openledger.errors import ValidationError
from openledger.factory.data import IGNORE

REDUCTIONS = ("sum", "mean")


def lora_layers(model: Any) -> list[tuple[str, Any, str]]:
    """(name, layer, adapter) for every LoRA layer of a PEFT model, in module order."""
    from peft.tuners.lora import LoraLayer

    out = []
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    out.append((name, module, adapter))
    if not out:
        raise ValidationError(
            "The model has no active LoRA layers to attribute through.",
            field="model",
            value=type(model).__name__,
            fix="load the adapter with PeftModel.from_pretrained before building an index.",
        )
    return out


def module_shapes(model: Any) -> list[ModuleShape]:
    shapes = []
    for name, layer, adapter in lora_layers(model):
        a = layer.lora_A[adapter].weight  # (r, in)
        b = layer.lora_B[adapter].weight  # (out, r)
        shapes.append(ModuleShape(name, int(a.shape[1]), int(b.shape[0]), int(a.shape[0])))
    return shapes


def supports_fused(model: Any) -> bool:
    """Plain LoRA everywhere (no DoRA or other variants)."""
    return all(
        adapter not in getattr(layer, "lora_variant", {})
        for _, layer, adapter in lora_layers(model)
    )


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position next-token cross-entropy (n, t); 0 where the label is ignored."""
    shifted = F.pad(labels[:, 1:], (0, 1), value=IGNORE)
    flat = F.cross_entropy(
        (logits if logits.dtype == torch.float64 else logits.float()).reshape(-1, logits.shape[-1]),
        shifted.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    )
    return flat.view(shifted.shape)


def example_losses(logits: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
    """(n,) the loss of each example."""
    per_token = token_losses(logits, labels)
    total = per_token.sum(dim=1)
    if reduction == "mean":
        count = (F.pad(labels[:, 1:], (0, 1), value=IGNORE) != IGNORE).sum(dim=1)
        return total / count.clamp(min=1)
    return total


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValidationError(
            f"Loss reduction {reduction!r} is not known.",
            field="loss_reduction",
            value=reduction,
            fix=f"use one of {', '.join(REDUCTIONS)}.",
        )


class FusedGrads:
    """Projected per-example gradients with one forward + backward per batch."""

    def __init__(self, model: Any, projection: Projection, reduction: str = "sum") -> None:
        check_reduction(reduction)
        if not supports_fused(model):
            raise ValidationError(
                "The fused gradient path handles plain LoRA only (this adapter uses DoRA).",
                field="grads",
                value="fused",
                fix="use the vmap path (grads='vmap').",
            )
        self.model = model
        self.projection = projection
        self.reduction = reduction
        self.layers = lora_layers(model)
        if [s.name for s in module_shapes(model)] != [m.name for m in projection.modules]:
            raise ValidationError(
                "The projection was made for other LoRA modules than this model has.",
                field="projection",
                value=len(projection.modules),
                fix="rebuild the index for this adapter.",
            )
        for _, layer, adapter in self.layers:
            for w in (layer.lora_A[adapter].weight, layer.lora_B[adapter].weight):
                w.requires_grad_(True)  # so activations carry gradients; weights get none

    def __call__(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(n, t) right-padded ids and labels → (n, k) (float64 for a float64 model)."""
        return self.projection.project_rows(self.flat(input_ids, labels))

    def flat(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(n, t) right-padded ids and labels → (n, D): the per-module projected gradients,
        before the dense projection."""
        saved: list[dict[str, torch.Tensor]] = [{} for _ in self.layers]
        handles = []
        for i, (_, layer, adapter) in enumerate(self.layers):
            handles.append(
                layer.lora_A[adapter].register_forward_hook(
                    lambda _m, inp, _out, i=i: saved[i].__setitem__("x", inp[0])
                )
            )
            handles.append(
                layer.lora_B[adapter].register_forward_hook(
                    lambda _m, inp, out, i=i: saved[i].update(z=inp[0], out=out)
                )
            )
        try:
            with torch.enable_grad():
                logits = self.model(input_ids=input_ids).logits
                loss = example_losses(logits, labels, self.reduction).sum()
                outs = [s["out"] for s in saved]
                grads = torch.autograd.grad(loss, outs)
        finally:
            for h in handles:
                h.remove()
        return self._project(saved, grads)

    @torch.no_grad()
    def _project(
        self, saved: list[dict[str, torch.Tensor]], grads: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """(n, D) in float64 when the model is float64 (reproducible), else float32."""
        parts = []
        dtype = torch.float64 if grads and grads[0].dtype == torch.float64 else torch.float32
        _, sides = self.projection.as_dtype(dtype)
        for (_, layer, adapter), m, s, g in zip(
            self.layers, self.projection.modules, saved, grads, strict=True
        ):
            x, z = s["x"].to(dtype), s["z"].to(dtype)  # (n, t, in), (n, t, r)
            g = g.to(dtype)  # (n, t, out)
            g_a = g @ layer.lora_B[adapter].weight.to(dtype)  # (n, t, r)
            p_in, p_out = sides.get((m.name, "in")), sides.get((m.name, "out"))
            if p_in is not None:
                x = x @ p_in.T  # (n, t, c_in)
            if p_out is not None:
                g = g @ p_out.T  # (n, t, c_out)
            ga = torch.einsum("ntr,nti->nri", g_a, x)  # (n, r, c_in)
            gb = torch.einsum("nto,ntr->nor", g, z)  # (n, c_out, r)
            parts += [ga.reshape(ga.shape[0], -1), gb.reshape(gb.shape[0], -1)]
        return torch.cat(parts, dim=1)  # (n, D)


class VmapGrads:
    """Projected per-example gradients with ``torch.func`` (any trainable LoRA weights)."""

    def __init__(
        self, model: Any, projection: Projection, reduction: str = "sum", chunk_size: int = 16
    ) -> None:
        check_reduction(reduction)
        self.model = model
        self.projection = projection
        self.reduction = reduction
        self.chunk_size = chunk_size
        self.layers = lora_layers(model)
        self.names = []
        for name, _, adapter in self.layers:
            self.names += [f"{name}.lora_A.{adapter}.weight", f"{name}.lora_B.{adapter}.weight"]
        self.extra = [
            n for n, p in model.named_parameters() if p.requires_grad and n not in self.names
        ]

    def full(self, input_ids: torch.Tensor, labels: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Unprojected per-example (G_A, G_B) per module, in module order."""
        from torch.func import functional_call, grad, vmap

        params = dict(self.model.named_parameters())
        wanted = {n: params[n].detach() for n in self.names}
        frozen = {n: p.detach() for n, p in params.items() if n not in wanted}
        frozen.update(dict(self.model.named_buffers()))

        def loss(p: dict[str, torch.Tensor], ids: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
            out = functional_call(self.model, {**frozen, **p}, (ids[None],), {})
            return example_losses(out.logits, lab[None], self.reduction)[0]

        with torch.enable_grad():
            g = vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=self.chunk_size)(
                wanted, input_ids, labels
            )
        names = iter(self.names)
        return [(g[next(names)], g[next(names)]) for _ in self.layers]

    def __call__(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.projection.project_full(self.full(input_ids, labels))


def make_grads(
    model: Any, projection: Projection, reduction: str = "sum", method: str = "auto"
) -> FusedGrads | VmapGrads:
    """``auto``: fused for plain LoRA, vmap otherwise."""
    if method == "fused" or (method == "auto" and supports_fused(model)):
        return FusedGrads(model, projection, reduction)
    if method in ("vmap", "auto"):
        return VmapGrads(model, projection, reduction)
    raise ValidationError(
        f"Gradient method {method!r} is not known.",
        field="grads",
        value=method,
        fix="use auto, fused or vmap.",
    )
