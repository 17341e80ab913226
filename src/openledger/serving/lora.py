"""The device slot pool and the batched multi-LoRA product (Punica BGMV semantics).

For every adapted linear ``(layer, module)`` the pool holds two stacked tensors

* ``A``: (slots + 1) × in × R and ``B``: (slots + 1) × R × out,

where ``R`` is the largest rank loaded so far: a rank-r adapter fills the first r columns
of its ``A`` and rows of its ``B`` and leaves zeros, which add exact zeros to the product,
so adapters of different ranks share one batch. Slot 0 is all zeros: the base model.

Per decode step the rows' slots are gathered once (``prepare``); each adapted linear then
adds ``(x · A[slot]) · B[slot]`` for all rows in two batched matmuls, one pass per layer
whatever the number of distinct adapters in the batch.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from openledger.serving.adapters import Key, LoraAdapter


class SlotsFull(Exception):
    """Every slot holds an adapter that a running request uses."""


class LoraSlots:
    """A fixed number of device slots for adapters, reused least-recently-used first."""

    def __init__(
        self,
        capacity: int,
        shapes: dict[str, tuple[int, int]],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
        rank: int = 8,
    ) -> None:
        self.capacity = capacity
        self.shapes = shapes  # module name -> (in, out)
        self.dtype, self.device, self.rank = dtype, torch.device(device), rank
        self._a: dict[Key, torch.Tensor] = {}
        self._b: dict[Key, torch.Tensor] = {}
        self._slot_of: OrderedDict[str, int] = OrderedDict()  # LRU order, oldest first
        self._pins: dict[int, int] = {}
        self._free = list(range(capacity, 0, -1))
        self._gathered: dict[Key, tuple[torch.Tensor, torch.Tensor]] | None = None
        self._gathered_for: tuple[int, ...] | None = None
        self.loads = 0
        self.evictions = 0

    # ------------------------------------------------------------------ residency

    def slot_of(self, name: str) -> int | None:
        return self._slot_of.get(name)

    def acquire(self, adapter: LoraAdapter) -> int:
        """Pin ``adapter`` in a slot (loading it into one if needed) and return the slot."""
        slot = self._slot_of.get(adapter.name)
        if slot is None:
            slot = self._take_slot()
            self._write(slot, adapter)
            self._slot_of[adapter.name] = slot
            self.loads += 1
        self._slot_of.move_to_end(adapter.name)
        self._pins[slot] = self._pins.get(slot, 0) + 1
        return slot

    def acquire_resident(self, name: str) -> int | None:
        """Pin an adapter already in a slot; None when it is not resident."""
        slot = self._slot_of.get(name)
        if slot is None:
            return None
        self._slot_of.move_to_end(name)
        self._pins[slot] = self._pins.get(slot, 0) + 1
        return slot

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

    def _take_slot(self) -> int:
        if self._free:
            return self._free.pop()
        for name, slot in self._slot_of.items():  # oldest first
            if slot not in self._pins:
                del self._slot_of[name]
                self.evictions += 1
                return slot
        raise SlotsFull

    def _write(self, slot: int, adapter: LoraAdapter) -> None:
        if adapter.max_rank > self.rank:
            self._grow(adapter.max_rank)
        for key in adapter.a:
            if key not in self._a:
                self._new_pool(key)
        for key, a_pool in self._a.items():
            a_pool[slot].zero_()
            self._b[key][slot].zero_()
            if key in adapter.a:
                a, b = adapter.a[key], adapter.b[key]
                r = a.shape[1]
                a_pool[slot, :, :r].copy_(a, non_blocking=True)
                self._b[key][slot, :r, :].copy_(b, non_blocking=True)
        self._gathered_for = None

    def _new_pool(self, key: Key) -> None:
        d_in, d_out = self.shapes[key[1]]
        n = self.capacity + 1
        kw = {"dtype": self.dtype, "device": self.device}
        self._a[key] = torch.zeros(n, d_in, self.rank, **kw)
        self._b[key] = torch.zeros(n, self.rank, d_out, **kw)

    def _grow(self, rank: int) -> None:
        for key in list(self._a):
            a, b = self._a[key], self._b[key]
            self._a[key] = torch.nn.functional.pad(a, (0, rank - self.rank))
            self._b[key] = torch.nn.functional.pad(b, (0, 0, 0, rank - self.rank))
        self.rank = rank

    # ------------------------------------------------------------------ the product

    def prepare(self, slots: list[int]) -> bool:
        """Gather the rows' adapters for the next forward; False when every row is base."""
        key = tuple(slots)
        if key == self._gathered_for:
            return self._gathered is not None
        self._gathered_for = key
        if not any(slots) or not self._a:
            self._gathered = None
            return False
        idx = torch.tensor(slots, device=self.device)
        self._gathered = {k: (self._a[k][idx], self._b[k][idx]) for k in self._a}
        return True

    def apply(self, key: Key, x: torch.Tensor, base_out: torch.Tensor) -> torch.Tensor:
        """``base_out + (x · A[row]) · B[row]`` for every row; x: n × T × in."""
        if self._gathered is None:
            return base_out
        pair = self._gathered.get(key)
        if pair is None:
            return base_out
        a, b = pair  # n × in × R, n × R × out
        return torch.baddbmm(base_out, torch.bmm(x, a), b)


__all__ = ["LoraSlots", "SlotsFull"]
