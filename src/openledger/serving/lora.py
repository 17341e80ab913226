"""The device slot pool: which adapter sits in which slot, and its weights stacked per group.

For every layer and group (:mod:`openledger.serving.arch`: qkv, o, gate_up, down) the pool
holds

* ``A``: (slots + 1) × in × k × R — the k slices' ``Aᵀ`` side by side, so one shrink serves
  every slice of the group, and
* ``B[j]``: (slots + 1) × R × out_j per slice j (and, once a DoRA adapter is loaded,
  ``G[j]``: (slots + 1) × out_j, its magnitude factor; 1 elsewhere),

where ``R`` is the largest rank loaded so far: a rank-r adapter fills the first r columns
and leaves zeros, which add exact zeros, so ranks and target sets mix freely in one batch.
Slot 0 is all zeros: the base model.

Decoding (``prepare``) gathers the rows' weights once per change of the decode batch
(trimmed to the largest rank among the rows and to the slices any row adapts); prefill
(``prepare_prefill``) groups its rows by adapter and reads each adapter once from the pool.
``apply`` then runs the pure ops of :mod:`openledger.serving.lora_ops` — one shrink and one
expand per slice for a whole group, one pass per layer whatever the number of distinct
adapters in the batch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from openledger.serving.adapters import Key, LoraAdapter
from openledger.serving.arch import Group
from openledger.serving.lora_ops import (
    add_lora_fused,
    dora_rescale,
    dora_rescale_rows,
    gather,
    sgmv_add_lora,
)


class SlotsFull(Exception):
    """Every slot holds an adapter that a running request uses."""


class SlotResidency:
    """Which adapter holds which of ``capacity`` slots (1 … capacity), reused LRU first
    among the slots that no running request pins."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._slot_of: OrderedDict[str, int] = OrderedDict()  # LRU order, oldest first
        self._pins: dict[int, int] = {}
        self._free = list(range(capacity, 0, -1))
        self.loads = 0
        self.evictions = 0

    def slot_of(self, name: str) -> int | None:
        return self._slot_of.get(name)

    def pin_resident(self, name: str) -> int | None:
        """Pin an adapter already in a slot; None when it is not resident."""
        slot = self._slot_of.get(name)
        if slot is None:
            return None
        self._slot_of.move_to_end(name)
        self._pins[slot] = self._pins.get(slot, 0) + 1
        return slot

    def take(self, name: str) -> tuple[int, str | None]:
        """A slot for ``name`` (not yet pinned): a free one, or the least recently used
        unpinned one; returns it and the adapter it evicted. SlotsFull if none."""
        if self._free:
            slot, evicted = self._free.pop(), None
        else:
            for old, old_slot in self._slot_of.items():  # oldest first
                if old_slot not in self._pins:
                    del self._slot_of[old]
                    self.evictions += 1
                    slot, evicted = old_slot, old
                    break
            else:
                raise SlotsFull
        self._slot_of[name] = slot
        self.loads += 1
        return slot, evicted

    def forget(self, name: str) -> None:
        """Drop ``name`` from its slot (after a failed write)."""
        slot = self._slot_of.pop(name, None)
        if slot is not None:
            self._pins.pop(slot, None)
            self._free.append(slot)

    def release(self, slot: int) -> None:
        if slot == 0:
            return
        left = self._pins.get(slot, 0) - 1
        if left > 0:
            self._pins[slot] = left
        else:
            self._pins.pop(slot, None)

    @property
    def pinned(self) -> int:
        return len(self._pins)

    @property
    def resident(self) -> list[str]:
        return list(self._slot_of)


class _GroupPool:
    """One (layer, group)'s stacked weights."""

    def __init__(
        self, group: Group, n: int, rank: int, dtype: torch.dtype, device: torch.device
    ) -> None:
        kw = {"dtype": dtype, "device": device}
        self.group = group
        self.a = torch.zeros(n, group.d_in, len(group.slices), rank, **kw)  # S × in × k × R
        self.b = [torch.zeros(n, rank, s.size, **kw) for s in group.slices]  # S × R × out_j
        self.g: list[torch.Tensor | None] = [None] * len(group.slices)  # S × out_j (DoRA)

    def grow(self, rank: int) -> None:
        old = self.a.shape[-1]
        self.a = torch.nn.functional.pad(self.a, (0, rank - old))
        self.b = [torch.nn.functional.pad(b, (0, 0, 0, rank - old)) for b in self.b]

    def clear(self, slot: int) -> None:
        self.a[slot].zero_()
        for b in self.b:
            b[slot].zero_()
        for g in self.g:
            if g is not None:
                g[slot].fill_(1)


def slot_bytes(groups: tuple[Group, ...], layers: int, rank: int, dtype: torch.dtype) -> int:
    """Bytes one slot takes at ``rank`` when every group of every layer is adapted."""
    size = torch.empty((), dtype=dtype).element_size()
    per_layer = sum(g.d_in * len(g.slices) * rank + rank * g.d_out for g in groups)
    return per_layer * layers * size


class ResidentSlots:
    """A device tier of ``residency.capacity`` adapter slots: which adapter holds which slot
    and how often they changed (``residency``); a subclass writes an adapter's weights into
    a slot (``_write``)."""

    residency: SlotResidency

    def _write(self, slot: int, adapter: Any) -> None:
        raise NotImplementedError

    def slot_of(self, name: str) -> int | None:
        return self.residency.slot_of(name)

    def acquire(self, adapter: Any) -> int:
        """Pin ``adapter`` in a slot (loading it into one if needed) and return the slot."""
        slot = self.residency.pin_resident(adapter.name)
        if slot is not None:
            return slot
        slot, _ = self.residency.take(adapter.name)
        try:
            self._write(slot, adapter)
        except Exception:
            self.residency.forget(adapter.name)
            raise
        pinned = self.residency.pin_resident(adapter.name)
        assert pinned is not None  # just taken for it
        return pinned

    def acquire_resident(self, name: str) -> int | None:
        """Pin an adapter already in a slot; None when it is not resident."""
        return self.residency.pin_resident(name)

    def release(self, slot: int) -> None:
        self.residency.release(slot)

    @property
    def pinned(self) -> int:
        return self.residency.pinned

    @property
    def resident(self) -> list[str]:
        return self.residency.resident

    @property
    def loads(self) -> int:
        return self.residency.loads

    @property
    def evictions(self) -> int:
        return self.residency.evictions


class LoraSlots(ResidentSlots):
    """A fixed number of device slots for adapters and the batched product over them."""

    def __init__(
        self,
        capacity: int,
        groups: tuple[Group, ...],
        layers: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        rank: int = 8,
    ) -> None:
        self.capacity = capacity
        self.groups = {g.name: g for g in groups}
        self.layers = layers
        self.dtype, self.device, self.rank = dtype, torch.device(device), rank
        self.where = {s.target: (g.name, j) for g in groups for j, s in enumerate(g.slices)}
        self.residency = SlotResidency(capacity)
        self._pools: dict[tuple[int, str], _GroupPool] = {}
        self._slot_rank: dict[int, int] = {}
        self._slot_keys: dict[int, frozenset[Key]] = {}
        self._slot_dora: dict[int, frozenset[Key]] = {}
        self._batch: dict[tuple[int, str], tuple] | None = None  # decode (BGMV), gathered
        self._batch_for: tuple[int, ...] | None = None
        self._segments: list[tuple[int, list[int]]] | None = None  # prefill (SGMV)

    # ------------------------------------------------------------------ residency

    @property
    def nbytes(self) -> int:
        """Bytes the pools hold now (they grow as groups are first adapted)."""
        total = 0
        for pool in self._pools.values():
            tensors = [pool.a, *pool.b, *(g for g in pool.g if g is not None)]
            total += sum(t.numel() * t.element_size() for t in tensors)
        return total

    def _write(self, slot: int, adapter: LoraAdapter) -> None:
        if adapter.max_rank > self.rank:
            for pool in self._pools.values():
                pool.grow(adapter.max_rank)
            self.rank = adapter.max_rank
        for layer, target in adapter.a:
            key = (layer, self.where[target][0])
            if key not in self._pools:
                group = self.groups[key[1]]
                self._pools[key] = _GroupPool(
                    group, self.capacity + 1, self.rank, self.dtype, self.device
                )
        for pool in self._pools.values():
            pool.clear(slot)
        for (layer, target), a in adapter.a.items():
            gname, j = self.where[target]
            pool = self._pools[(layer, gname)]
            r = a.shape[1]
            pool.a[slot, :, j, :r].copy_(a, non_blocking=True)
            pool.b[j][slot, :r].copy_(adapter.b[(layer, target)], non_blocking=True)
            g = adapter.dora.get((layer, target))
            if g is not None:
                if pool.g[j] is None:
                    pool.g[j] = torch.ones(
                        self.capacity + 1, g.shape[0], dtype=self.dtype, device=self.device
                    )
                pool.g[j][slot].copy_(g, non_blocking=True)
        self._slot_rank[slot] = adapter.max_rank
        self._slot_keys[slot] = frozenset(adapter.a)
        self._slot_dora[slot] = frozenset(adapter.dora)
        # The gathered decode batch stays valid: its slots are pinned by running requests,
        # so the slot written here is not one of them (rank growth only pads with zeros).

    # ------------------------------------------------------------------ the product

    def prepare(self, slots: list[int]) -> bool:
        """Gather the decode rows' adapters (BGMV); kept until the rows' slots change, so a
        prefill in between does not throw it away. False when every row is base."""
        self._segments = None
        key = tuple(slots)
        if key == self._batch_for:
            return self._batch is not None
        self._batch_for = key
        used = {s for s in slots if s}
        if not used or not self._pools:
            self._batch = None
            return False
        idx = torch.tensor(slots, device=self.device)
        r = max(self._slot_rank[s] for s in used)
        keys = frozenset().union(*(self._slot_keys[s] for s in used))
        doras = frozenset().union(*(self._slot_dora[s] for s in used))
        self._batch = {}
        for (layer, gname), pool in self._pools.items():
            group = pool.group
            on = [j for j, s in enumerate(group.slices) if (layer, s.target) in keys]
            if not on:
                continue
            a = gather(pool.a, idx)  # n × in × k × R
            if len(on) < len(group.slices) or r < self.rank:
                a = a[:, :, on, :r]
            a = a.reshape(len(slots), group.d_in, len(on) * r)  # n × in × k_on·r
            expands = []
            for pos, j in enumerate(on):
                b = gather(pool.b[j], idx)  # n × R × out_j
                expands.append((pos * r, group.slices[j].offset, b[:, :r].contiguous()))
            scales = [
                (group.slices[j].offset, group.slices[j].size, gather(pool.g[j], idx))
                for j in on
                if (layer, group.slices[j].target) in doras and pool.g[j] is not None
            ]
            self._batch[(layer, gname)] = (a, expands, scales)
        return True

    def prepare_prefill(self, slots: list[int]) -> bool:
        """Segments of prefill rows per adapter (SGMV): nothing is gathered, each adapter is
        read once for its rows. False when every row is base."""
        rows: dict[int, list[int]] = {}
        for i, s in enumerate(slots):
            if s:
                rows.setdefault(s, []).append(i)
        self._segments = list(rows.items())
        return bool(self._segments)

    def apply(
        self,
        layer: int,
        group: str,
        x: torch.Tensor,
        y: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``y`` (the group's base output, n × T × Σout, with ``bias`` in it) plus every
        row's LoRA per slice, in place; x: n × T × in."""
        if self._segments is not None:
            return self._apply_segments(layer, group, x, y, bias)
        if self._batch is None:
            return y
        entry = self._batch.get((layer, group))
        if entry is None:
            return y
        a, expands, scales = entry
        add_lora_fused(y, x, a, expands)
        for offset, size, g in scales:
            part = None if bias is None else bias.narrow(0, offset, size)
            dora_rescale(y, g, offset, part)
        return y

    def _apply_segments(
        self, layer: int, group: str, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        pool = self._pools.get((layer, group))
        if pool is None or not self._segments:
            return y
        slices = pool.group.slices
        for slot, rows in self._segments:
            keys = self._slot_keys[slot]
            on = [j for j, s in enumerate(slices) if (layer, s.target) in keys]
            if not on:
                continue
            r = self._slot_rank[slot]
            a = pool.a[slot]  # in × k × R (a view)
            if len(on) < len(slices) or r < a.shape[-1]:
                a = a[:, on, :r]  # a copy of this adapter's part only
            a = a.reshape(pool.group.d_in, len(on) * r)  # in × k_on·r
            expands = [(pos * r, slices[j].offset, pool.b[j][slot, :r]) for pos, j in enumerate(on)]
            sgmv_add_lora(y, x, rows, a, expands)
            for j in on:
                g = pool.g[j]
                if g is not None and (layer, slices[j].target) in self._slot_dora[slot]:
                    part = (
                        None if bias is None else bias.narrow(0, slices[j].offset, slices[j].size)
                    )
                    dora_rescale_rows(y, rows, g[slot], slices[j].offset, part)
        return y


__all__ = ["LoraSlots", "SlotResidency", "SlotsFull", "slot_bytes"]
