"""The seeded random projection of LoRA gradients to ``k`` dimensions (LoGra style).

A LoRA module has two weights: ``A`` (r × in) and ``B`` (out × r). Their per-example
gradients are first reduced per module along the large side — ``P_out · G_B`` (c_out × r)
and ``G_A · P_inᵀ`` (r × c_in), with Gaussian ``P`` of ``c = min(dim, cap)`` rows, or no
reduction when ``dim ≤ cap`` — and the concatenation over modules (``D`` values) is then
projected by one dense Gaussian ``R`` (D × k) scaled by 1/√k. Both steps are
Johnson–Lindenstrauss maps, so inner products between gradients are preserved in
expectation; the per-module step keeps ``R`` small for wide models (LoGra's structured
projection), and because it is linear it can be applied to activations before the
gradient is formed (see :mod:`openledger.attribution.gradient.grads`).

Every matrix is drawn from a ``torch.Generator`` seeded by ``(seed, module name, role)``,
so anyone with the seed and the adapter's module list rebuilds the same projection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

#: The widest concatenation ``R`` may take before per-module reduction kicks in.
MAX_DENSE_DIM = 65_536
#: rows multiplied by ``R`` at a time (padded): see ``Projection.project_rows``
ROWS = 32


@dataclass(frozen=True)
class ModuleShape:
    """One adapted linear layer: its name in the model and its LoRA shapes."""

    name: str
    in_features: int
    out_features: int
    rank: int


def _generator(seed: int, *parts: str) -> torch.Generator:
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") & (2**63 - 1))


def auto_cap(modules: Sequence[ModuleShape], max_dense: int = MAX_DENSE_DIM) -> int:
    """The largest power-of-two per-module width keeping ``D ≤ max_dense`` (at least 8)."""
    cap = 1 << 16
    while cap > 8:
        width = sum(m.rank * (min(m.out_features, cap) + min(m.in_features, cap)) for m in modules)
        if width <= max_dense:
            return cap
        cap //= 2
    return 8


@dataclass(frozen=True)
class Projection:
    """``seed``, ``k`` and ``cap`` with the module shapes decide every matrix."""

    modules: tuple[ModuleShape, ...]
    k: int
    seed: int
    cap: int

    @classmethod
    def for_modules(
        cls, modules: Sequence[ModuleShape], k: int, seed: int, cap: int | None = None
    ) -> Projection:
        return cls(tuple(modules), k, seed, cap if cap is not None else auto_cap(modules))

    def reduced(self, m: ModuleShape) -> tuple[int, int]:
        """(c_out, c_in) of module ``m`` after the per-module step."""
        return min(m.out_features, self.cap), min(m.in_features, self.cap)

    @property
    def dense_dim(self) -> int:
        """D: the width of the concatenated per-module gradients."""
        return sum(m.rank * sum(self.reduced(m)) for m in self.modules)

    def side(self, m: ModuleShape, role: str) -> torch.Tensor | None:
        """``P_out`` (c_out × out) for role "out", ``P_in`` (c_in × in) for role "in";
        None when that side is not reduced."""
        dim = m.out_features if role == "out" else m.in_features
        if dim <= self.cap:
            return None
        return self._sides[(m.name, role)]

    @cached_property
    def _sides(self) -> dict[tuple[str, str], torch.Tensor]:
        out: dict[tuple[str, str], torch.Tensor] = {}
        for m in self.modules:
            for role, dim in (("out", m.out_features), ("in", m.in_features)):
                if dim > self.cap:
                    g = _generator(self.seed, m.name, role)
                    out[(m.name, role)] = torch.randn(self.cap, dim, generator=g) / self.cap**0.5
        return out

    @cached_property
    def dense(self) -> torch.Tensor:
        """R (D × k), drawn in module order so a module's rows never depend on the others."""
        blocks = []
        for m in self.modules:
            rows = m.rank * sum(self.reduced(m))
            g = _generator(self.seed, m.name, "dense", str(self.k))
            blocks.append(torch.randn(rows, self.k, generator=g))
        return torch.cat(blocks) / self.k**0.5

    def __getstate__(self) -> dict[str, object]:
        """Pickled (to build workers) without its matrices: they are redrawn from the seed."""
        return {k: v for k, v in self.__dict__.items() if k not in ("dense", "_sides", "_by_dtype")}

    def as_dtype(self, dtype: torch.dtype) -> tuple[torch.Tensor, dict]:
        """(R, {(module, role): P}) in ``dtype``, converted once (a float64 attribution
        would otherwise copy R, D × k, on every call)."""
        cache = self.__dict__.setdefault("_by_dtype", {})
        if dtype not in cache:
            cache[dtype] = (self.dense.to(dtype), {k: v.to(dtype) for k, v in self._sides.items()})
        return cache[dtype]

    def project_rows(self, flat: torch.Tensor) -> torch.Tensor:
        """(n, D) → (n, k): ``flat @ R`` in blocks of ``min(ROWS, n)`` rows (the last padded
        with zeros), so a row is multiplied by the same kernel whatever else is in its shard
        (reproducible index bytes); a single query is one row."""
        dense, _ = self.as_dtype(flat.dtype)
        n = flat.shape[0]
        size = max(1, min(ROWS, n))
        out = torch.empty(n, self.k, dtype=flat.dtype)
        block = torch.zeros(size, flat.shape[1], dtype=flat.dtype)
        for a in range(0, n, size):
            rows = flat[a : a + size]
            block.zero_()
            block[: rows.shape[0]] = rows
            out[a : a + rows.shape[0]] = (block @ dense)[: rows.shape[0]]  # (size, D) @ (D, k)
        return out

    def project_full(self, per_module: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Project full per-example gradients: ``per_module[i] = (G_A (n, r, in), G_B (n,
        out, r))`` in module order → (n, k). The reference the fused path must equal."""
        flat = []
        for m, (ga, gb) in zip(self.modules, per_module, strict=True):
            p_in, p_out = self.side(m, "in"), self.side(m, "out")
            if p_in is not None:
                ga = ga @ p_in.T  # (n, r, c_in)
            if p_out is not None:
                gb = p_out @ gb  # (n, c_out, r)
            flat += [ga.reshape(ga.shape[0], -1), gb.reshape(gb.shape[0], -1)]
        return self.project_rows(torch.cat(flat, dim=1))  # (n, D) @ (D, k)

    def describe(self) -> dict[str, object]:
        return {
            "k": self.k,
            "seed": self.seed,
            "cap": self.cap,
            "dense_dim": self.dense_dim,
            "kind": "per-module gaussian (dims > cap) then dense gaussian / sqrt(k)",
            "modules": [
                {"name": m.name, "in": m.in_features, "out": m.out_features, "rank": m.rank}
                for m in self.modules
            ],
        }
