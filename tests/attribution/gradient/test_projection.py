from __future__ import annotations

import torch

from openledger.attribution.gradient.projection import ModuleShape, Projection, auto_cap

MODS = [ModuleShape("a", 64, 64, 4), ModuleShape("b", 256, 64, 2), ModuleShape("c", 64, 512, 8)]


def test_same_seed_same_matrices_other_seed_other() -> None:
    p1 = Projection.for_modules(MODS, k=32, seed=7, cap=128)
    p2 = Projection.for_modules(MODS, k=32, seed=7, cap=128)
    p3 = Projection.for_modules(MODS, k=32, seed=8, cap=128)
    assert torch.equal(p1.dense, p2.dense) and not torch.equal(p1.dense, p3.dense)
    assert torch.equal(p1.side(MODS[1], "in"), p2.side(MODS[1], "in"))
    assert p1.side(MODS[0], "in") is None and p1.side(MODS[2], "out").shape == (128, 512)


def test_a_module_rows_do_not_depend_on_the_others() -> None:
    alone = Projection.for_modules(MODS[:1], k=16, seed=1, cap=128).dense
    together = Projection.for_modules(MODS, k=16, seed=1, cap=128).dense
    assert torch.equal(together[: alone.shape[0]], alone)


def test_dense_dim_and_auto_cap() -> None:
    p = Projection.for_modules(MODS, k=8, seed=0, cap=64)
    assert p.dense_dim == 4 * (64 + 64) + 2 * (64 + 64) + 8 * (64 + 64)
    assert p.dense.shape == (p.dense_dim, 8)
    assert auto_cap(MODS) == 1 << 16  # small modules: nothing is reduced
    big = [ModuleShape(f"m{i}", 4096, 4096, 16) for i in range(112)]
    cap = auto_cap(big)
    assert sum(16 * 2 * min(4096, cap) for _ in big) <= 65_536 and cap >= 8


def test_inner_products_are_preserved_on_average() -> None:
    mods = [ModuleShape("m", 128, 128, 8)]
    p = Projection.for_modules(mods, k=2048, seed=3, cap=1 << 16)
    g = torch.Generator().manual_seed(0)
    ga, gb = torch.randn(2, 8, 128, generator=g), torch.randn(2, 128, 8, generator=g)
    full = torch.cat([ga.reshape(2, -1), gb.reshape(2, -1)], dim=1)
    proj = p.project_full([(ga, gb)])
    exact = full @ full.T
    approx = proj @ proj.T
    assert torch.allclose(approx.diag(), exact.diag(), rtol=0.1)
