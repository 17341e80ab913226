"""The pure LoRA ops against their "Semantics:" docstrings, written out as loops."""

from __future__ import annotations

import torch

from openledger.serving.lora_ops import (
    add_lora_fused,
    bgmv_expand_slice,
    bgmv_shrink,
    dora_magnitude_scale,
    dora_rescale,
    dora_rescale_rows,
    gather,
    sgmv_add_lora,
)

G = torch.Generator().manual_seed(0)


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def test_gather_shrink_and_expand_follow_their_semantics() -> None:
    stacked = rand(5, 6, 3)
    idx = torch.tensor([4, 0, 4, 2])
    a = gather(stacked, idx)
    assert all(torch.equal(a[i], stacked[j]) for i, j in enumerate(idx.tolist()))
    x = rand(4, 2, 6)
    h = bgmv_shrink(x, a)
    for i in range(4):
        for t in range(2):
            assert torch.allclose(h[i, t], x[i, t] @ a[i])
    b = rand(4, 3, 7)
    y = rand(4, 2, 12)
    before = y.clone()
    assert bgmv_expand_slice(y, h, b, 5) is y
    for i in range(4):
        assert torch.allclose(y[i, :, 5:12], before[i, :, 5:12] + h[i] @ b[i])
    assert torch.equal(y[..., :5], before[..., :5])


def test_fused_lora_adds_each_slice_from_its_own_columns() -> None:
    x, a = rand(3, 4, 6), rand(3, 6, 5)  # two slices: ranks 2 and 3
    b1, b2 = rand(3, 2, 4), rand(3, 3, 2)
    y = torch.zeros(3, 4, 7, dtype=torch.float64)
    add_lora_fused(y, x, a, [(0, 0, b1), (2, 5, b2)])
    for i in range(3):
        assert torch.allclose(y[i, :, :4], x[i] @ a[i, :, :2] @ b1[i])
        assert torch.equal(y[i, :, 4], torch.zeros(4, dtype=y.dtype))  # between the slices
        assert torch.allclose(y[i, :, 5:], x[i] @ a[i, :, 2:] @ b2[i])


def test_dora_rescale_and_its_factor() -> None:
    y, g, bias = rand(2, 3, 6), 1 + rand(2, 4).abs(), rand(4)
    before = y.clone()
    dora_rescale(y, g, 1, bias)
    for i in range(2):
        assert torch.allclose(y[i, :, 1:5], g[i] * (before[i, :, 1:5] - bias) + bias)
    assert torch.equal(y[..., [0, 5]], before[..., [0, 5]])
    ones = torch.ones(2, 4, dtype=y.dtype)
    assert torch.equal(dora_rescale(before.clone(), ones, 1, bias), before)  # exact for g = 1
    w, a, b, m = rand(4, 6), rand(6, 2), rand(2, 4), rand(4).abs()
    expected = m / (w + (a @ b).t()).norm(dim=1)
    assert torch.allclose(dora_magnitude_scale(w, a, b, m).double(), expected, atol=1e-5)


def test_sgmv_adds_a_segment_and_leaves_the_other_rows() -> None:
    x, a = rand(4, 3, 6), rand(6, 5)  # one adapter, two slices of ranks 2 and 3
    b1, b2 = rand(2, 4), rand(3, 2)
    y = rand(4, 3, 7)
    before = y.clone()
    sgmv_add_lora(y, x, [0, 2], a, [(0, 0, b1), (2, 5, b2)])
    for r in (0, 2):
        assert torch.allclose(y[r, :, :4], before[r, :, :4] + x[r] @ a[:, :2] @ b1)
        assert torch.allclose(y[r, :, 5:], before[r, :, 5:] + x[r] @ a[:, 2:] @ b2)
        assert torch.equal(y[r, :, 4], before[r, :, 4])
    assert torch.equal(y[[1, 3]], before[[1, 3]])
    g, bias = 1 + rand(3).abs(), rand(3)
    dora_rescale_rows(y, [1], g, 2, bias)
    assert torch.allclose(y[1, :, 2:5], g * (before[1, :, 2:5] - bias) + bias)
    assert torch.equal(y[3], before[3])
