"""The batched multi-LoRA products as pure tensor functions (Punica BGMV / SGMV semantics).

No state lives here: the slot pool (:mod:`openledger.serving.lora`) owns the stacked
adapter weights and decides which rows use which slot; these functions only compute. Shapes
use ``n`` rows (requests), ``T`` tokens per row (1 when decoding), ``R`` the rank columns of
the gathered weights (the largest rank among the rows, smaller ranks zero-padded).

Layout, as :mod:`openledger.serving.adapters` stores an adapter: ``a`` is ``Aᵀ`` (in × r)
and ``b`` is ``(s·B)ᵀ`` (r × out) with the LoRA scale folded in, so a row's update is
``(x · a) · b``. Decoding uses the BGMV ops on weights gathered per row (kept while the
batch's rows stay the same); prefill uses the SGMV ops, one segment of rows per adapter,
reading each adapter once.
"""

from __future__ import annotations

import torch


def gather(stacked: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Pick each row's adapter out of a slot-stacked tensor.

    Semantics:
        out[i] = stacked[indices[i]]

    stacked: S × ..., indices: n (int64) → n × ...  (a copy: the rows' weights side by side).
    """
    return stacked.index_select(0, indices)


def bgmv_shrink(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The first LoRA product, every row with its own ``A``.

    Semantics:
        out[i, t, :] = x[i, t, :] @ a[i]

    x: n × T × in, a: n × in × R (gathered) → n × T × R.
    """
    return torch.bmm(x, a)


def bgmv_expand_slice(
    y: torch.Tensor, h: torch.Tensor, b: torch.Tensor, offset: int
) -> torch.Tensor:
    """The second LoRA product added into one slice of a fused output, in place.

    Semantics:
        y[i, t, offset : offset + out] += h[i, t, :] @ b[i]

    y: n × T × Σout (the fused base output), h: n × T × R, b: n × R × out. Returns ``y``.
    """
    part = y.narrow(-1, offset, b.shape[-1])
    if part.dtype == b.dtype:
        part.baddbmm_(h, b)
    else:  # adapters kept in another dtype than the model (float32 LoRA on a bf16 CPU base)
        part.add_(torch.bmm(h, b))
    return y


def add_lora_fused(
    y: torch.Tensor,
    x: torch.Tensor,
    a: torch.Tensor,
    slices: list[tuple[int, int, torch.Tensor]],
) -> torch.Tensor:
    """LoRA for every slice of a fused projection: one shrink, one expand per slice.

    Semantics:
        h = x @ a                                   (all slices' A side by side)
        for (col, offset, b) in slices:
            r = b.shape[-2]
            y[i, :, offset : offset + out] += h[i, :, col : col + r] @ b[i]

    y: n × T × Σout, x: n × T × in, a: n × in × ΣR, each b: n × R_j × out_j. Returns ``y``.
    """
    h = bgmv_shrink(x.to(a.dtype), a)  # n × T × ΣR
    for col, offset, b in slices:
        bgmv_expand_slice(y, h[..., col : col + b.shape[-2]], b, offset)
    return y


def sgmv_add_lora(
    y: torch.Tensor,
    x: torch.Tensor,
    rows: list[int],
    a: torch.Tensor,
    slices: list[tuple[int, int, torch.Tensor]],
) -> torch.Tensor:
    """LoRA for one segment of rows that share an adapter (prefill), in place; the
    adapter's weights are read once for the segment instead of gathered per row.

    Semantics:
        for r in rows, (col, offset, b) in slices:
            y[r, :, offset : offset + out] += x[r] @ a[:, col : col + R_j] @ b

    y: n × T × Σout, x: n × T × in, rows: m row indices, a: in × ΣR, each b: R_j × out_j.
    Returns ``y``.
    """
    xs = x[rows[0] : rows[0] + 1] if len(rows) == 1 else x[rows]  # m × T × in
    h = torch.matmul(xs.to(a.dtype), a)  # m × T × ΣR
    for col, offset, b in slices:
        delta = torch.matmul(h[..., col : col + b.shape[0]], b).to(y.dtype)  # m × T × out
        for i, r in enumerate(rows):  # slice adds: index_add_ on a strided view is ~20× slower
            y[r, :, offset : offset + b.shape[-1]] += delta[i]
    return y


def dora_rescale_rows(
    y: torch.Tensor,
    rows: list[int],
    g: torch.Tensor,
    offset: int,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`dora_rescale` for a segment of rows sharing one factor, in place.

    Semantics:
        for r in rows: y[r, t, sl] = g * y[r, t, sl] + (1 - g) * bias[sl]

    y: n × T × Σout, rows: m row indices, g: out, bias: out or None. Returns ``y``.
    """
    for r in rows:
        part = y[r, :, offset : offset + g.shape[-1]]  # T × out
        part.mul_(g)
        if bias is not None:
            part.add_((1 - g) * bias)
    return y


def dora_rescale(
    y: torch.Tensor, g: torch.Tensor, offset: int, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """DoRA's magnitude on one slice of a fused output (after its LoRA was added), in place.

    Semantics:
        y[i, t, sl] = g[i] * (y[i, t, sl] - bias[sl]) + bias[sl]
                    = g[i] * y[i, t, sl] + (1 - g[i]) * bias[sl]

    where ``sl`` = offset … offset + out and ``g = m / ‖W + s·BA‖`` per output feature (1 for
    rows without DoRA on this slice, which leaves them exactly unchanged).
    y: n × T × Σout, g: n × out, bias: out or None. Returns ``y``.
    """
    part = y.narrow(-1, offset, g.shape[-1])
    part.mul_(g[:, None, :])
    if bias is not None:
        part.add_((1 - g)[:, None, :] * bias)
    return y


def dora_magnitude_scale(
    weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, magnitude: torch.Tensor
) -> torch.Tensor:
    """DoRA's per-output factor for one adapted linear (computed once, at load).

    Semantics:
        g = magnitude / ‖W + (a @ b)ᵀ‖₂ (norm of each output row)

    weight: out × in (the base), a: in × r, b: r × out (scale folded in), magnitude: out → out.
    """
    dev = weight.device
    merged = weight.float() + (a.to(dev).float() @ b.to(dev).float()).t()  # out × in
    return magnitude.to(dev).float() / torch.linalg.vector_norm(merged, dim=1)


__all__ = [
    "add_lora_fused",
    "bgmv_expand_slice",
    "bgmv_shrink",
    "dora_magnitude_scale",
    "dora_rescale",
    "dora_rescale_rows",
    "gather",
    "sgmv_add_lora",
]
