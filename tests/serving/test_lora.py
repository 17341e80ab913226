"""The device slot pool: LRU residency, pins, rank growth and the batched product."""

from __future__ import annotations

import pytest
import torch

from openledger.serving.adapters import LoraAdapter
from openledger.serving.lora import LoraSlots, SlotsFull

SHAPES = {"q_proj": (8, 8), "v_proj": (8, 4), "down_proj": (16, 8)}


def adapter(name: str, rank: int, modules: tuple[str, ...], seed: int) -> LoraAdapter:
    g = torch.Generator().manual_seed(seed)
    a, b = {}, {}
    for m in modules:
        d_in, d_out = SHAPES[m]
        a[(0, m)] = torch.randn(d_in, rank, generator=g)
        b[(0, m)] = torch.randn(rank, d_out, generator=g)
    return LoraAdapter(name, a, b)


def product(
    slots: LoraSlots, key: tuple[int, str], x: torch.Tensor, rows: list[int]
) -> torch.Tensor:
    slots.prepare(rows)
    return slots.apply(key, x, torch.zeros(x.shape[0], x.shape[1], SHAPES[key[1]][1]))


def test_each_row_gets_its_own_adapter_whatever_the_ranks() -> None:
    slots = LoraSlots(4, SHAPES, rank=2)
    ads = [adapter("r2", 2, ("q_proj",), 0), adapter("r8", 8, ("q_proj", "v_proj"), 1)]
    rows = [slots.acquire(a) for a in ads]
    assert slots.rank == 8  # grown for the rank-8 adapter, the rank-2 one padded with zeros
    x = torch.randn(3, 5, 8)
    out = product(slots, (0, "q_proj"), x, [rows[0], rows[1], 0])
    for i, ad in enumerate(ads):
        expected = x[i] @ ad.a[(0, "q_proj")] @ ad.b[(0, "q_proj")]
        assert torch.allclose(out[i], expected, atol=1e-5)
    assert torch.equal(out[2], torch.zeros(5, 8))  # slot 0 is the base model
    v = product(slots, (0, "v_proj"), x, [rows[0], rows[1], 0])
    assert torch.equal(v[0], torch.zeros(5, 4))  # r2 does not adapt v_proj


def test_lru_eviction_skips_pinned_slots_and_a_reused_slot_is_clean() -> None:
    slots = LoraSlots(2, SHAPES)
    first = slots.acquire(adapter("a", 4, ("q_proj", "v_proj"), 0))
    second = slots.acquire(adapter("b", 4, ("q_proj",), 1))
    slots.release(second)
    with pytest.raises(SlotsFull):  # a is pinned, b is not: c takes b's slot, d finds none
        slots.acquire(adapter("c", 4, ("down_proj",), 2))
        slots.acquire(adapter("d", 4, ("q_proj",), 3))
    assert slots.slot_of("b") is None and slots.slot_of("c") == second
    assert slots.slot_of("a") == first and slots.evictions == 1
    x = torch.randn(1, 1, 8)
    # c took b's slot: b's q_proj weights must be gone from it.
    assert torch.equal(product(slots, (0, "q_proj"), x, [second]), torch.zeros(1, 1, 8))
    slots.release(first)
    assert slots.pinned == 1  # c is still pinned


def test_every_row_base_skips_the_lora_product() -> None:
    slots = LoraSlots(2, SHAPES)
    slots.acquire(adapter("a", 4, ("q_proj",), 0))
    assert slots.prepare([0, 0]) is False
    base = torch.randn(2, 1, 8)
    assert slots.apply((0, "q_proj"), torch.randn(2, 1, 8), base) is base
