"""The device slot pool: LRU residency, pins, rank growth, fused slices and the product."""

from __future__ import annotations

import pytest
import torch

from openledger.serving.adapters import LoraAdapter
from openledger.serving.arch import Group, Slice
from openledger.serving.lora import LoraSlots, SlotsFull, slot_bytes

# One fused group of two slices (like q and v sharing an input) and a single-slice group.
GROUPS = (
    Group("qkv", 8, (Slice("q_proj", 0, 8), Slice("v_proj", 8, 4))),
    Group("down", 16, (Slice("down_proj", 0, 8),)),
)
SHAPES = {"q_proj": (8, 8), "v_proj": (8, 4), "down_proj": (16, 8)}


def adapter(
    name: str, rank: int, modules: tuple[str, ...], seed: int, dora: bool = False
) -> LoraAdapter:
    g = torch.Generator().manual_seed(seed)
    a, b, scale = {}, {}, {}
    for m in modules:
        d_in, d_out = SHAPES[m]
        a[(0, m)] = torch.randn(d_in, rank, generator=g)
        b[(0, m)] = torch.randn(rank, d_out, generator=g)
        if dora:
            scale[(0, m)] = 1 + torch.rand(d_out, generator=g)
    return LoraAdapter(name, a, b, scale)


def group_out(
    slots: LoraSlots,
    group: str,
    x: torch.Tensor,
    rows: list[int],
    bias: torch.Tensor | None = None,
    prefill: bool = False,
) -> torch.Tensor:
    """The LoRA part of a group's output for ``rows`` (base output: ``bias`` or zeros),
    by the decode path (gathered, BGMV) or the prefill path (segments, SGMV)."""
    if prefill:
        slots.prepare_prefill(rows)
    else:
        slots.prepare(rows)
    d_out = next(g for g in GROUPS if g.name == group).d_out
    base = torch.zeros(x.shape[0], x.shape[1], d_out) + (0 if bias is None else bias)
    return slots.apply(0, group, x, base, bias)


def test_each_row_gets_its_own_adapter_per_slice_whatever_the_ranks() -> None:
    slots = LoraSlots(4, GROUPS, 1, rank=2)
    ads = [adapter("r2", 2, ("q_proj",), 0), adapter("r8", 8, ("q_proj", "v_proj"), 1)]
    rows = [slots.acquire(a) for a in ads]
    assert slots.rank == 8  # grown for the rank-8 adapter, the rank-2 one padded with zeros
    x = torch.randn(3, 5, 8)
    out = group_out(slots, "qkv", x, [rows[0], rows[1], 0])
    for i, ad in enumerate(ads):
        q = x[i] @ ad.a[(0, "q_proj")] @ ad.b[(0, "q_proj")]
        assert torch.allclose(out[i, :, :8], q, atol=1e-5)
    v = x[1] @ ads[1].a[(0, "v_proj")] @ ads[1].b[(0, "v_proj")]
    assert torch.allclose(out[1, :, 8:], v, atol=1e-5)
    assert torch.equal(out[0, :, 8:], torch.zeros(5, 4))  # r2 does not adapt v_proj
    assert torch.equal(out[2], torch.zeros(5, 12))  # slot 0 is the base model


def test_a_batch_gathers_only_its_rank_and_slices() -> None:
    slots = LoraSlots(3, GROUPS, 1)
    small = slots.acquire(adapter("r4", 4, ("q_proj",), 0))
    slots.acquire(adapter("r16", 16, ("q_proj", "v_proj", "down_proj"), 1))
    assert slots.prepare([small, 0])
    a, expands, scales = slots._batch[(0, "qkv")]
    assert a.shape == (2, 8, 4) and len(expands) == 1 and not scales  # q only, rank 4
    assert (0, "down") not in slots._batch  # no row adapts down_proj


def test_dora_rows_are_rescaled_and_plain_rows_left_exactly_alone() -> None:
    slots = LoraSlots(2, GROUPS, 1)
    plain, dora = adapter("p", 4, ("q_proj",), 0), adapter("d", 4, ("q_proj",), 1, dora=True)
    rows = [slots.acquire(plain), slots.acquire(dora)]
    x, bias = torch.randn(2, 3, 8), torch.randn(12)
    out = group_out(slots, "qkv", x, rows, bias)
    lora_p = x[0] @ plain.a[(0, "q_proj")] @ plain.b[(0, "q_proj")]
    alone = group_out(slots, "qkv", x[:1], rows[:1], bias)  # no DoRA row in the batch
    assert torch.equal(out[0], alone[0])  # g = 1 leaves a plain row bit for bit
    assert torch.allclose(out[0, :, :8], bias[:8] + lora_p, atol=1e-5)
    lora_d = x[1] @ dora.a[(0, "q_proj")] @ dora.b[(0, "q_proj")]
    g = dora.dora[(0, "q_proj")]
    assert torch.allclose(out[1, :, :8], g * lora_d + bias[:8], atol=1e-5)  # g ⊙ (Wx + ΔWx) + b
    assert torch.equal(out[1, :, 8:], bias[8:].expand(3, 4))


def test_lru_eviction_skips_pinned_slots_and_a_reused_slot_is_clean() -> None:
    slots = LoraSlots(2, GROUPS, 1)
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
    assert torch.equal(group_out(slots, "qkv", x, [second]), torch.zeros(1, 1, 12))
    slots.release(first)
    assert slots.pinned == 1  # c is still pinned


def test_every_row_base_skips_the_lora_product() -> None:
    slots = LoraSlots(2, GROUPS, 1)
    slots.acquire(adapter("a", 4, ("q_proj",), 0))
    assert slots.prepare([0, 0]) is False
    base = torch.randn(2, 1, 12)
    assert slots.apply(0, "qkv", torch.randn(2, 1, 8), base) is base


def test_slot_bytes_count_every_group_at_the_rank() -> None:
    # qkv: 8 in × 2 slices × r + r × 12 out; down: 16 × r + r × 8; float32
    assert slot_bytes(GROUPS, 3, 4, torch.float32) == 3 * 4 * (8 * 2 * 4 + 4 * 12 + 16 * 4 + 4 * 8)
    slots = LoraSlots(2, GROUPS, 1, rank=4)
    slots.acquire(adapter("a", 4, ("q_proj", "down_proj"), 0))
    assert slots.nbytes == 3 * slot_bytes(GROUPS, 1, 4, torch.float32)  # 2 slots + slot 0


def test_prefill_segments_equal_the_gathered_decode_path() -> None:
    slots = LoraSlots(4, GROUPS, 1, rank=2)
    ads = [
        adapter("a", 2, ("q_proj",), 0),
        adapter("b", 8, ("q_proj", "v_proj", "down_proj"), 1),
        adapter("d", 4, ("v_proj",), 2, dora=True),
    ]
    ids = [slots.acquire(a) for a in ads]
    rows = [ids[1], 0, ids[0], ids[2], ids[1]]  # b twice, a base row between
    x, bias = torch.randn(5, 3, 8), torch.randn(12)
    decode = group_out(slots, "qkv", x, rows, bias)
    prefill = group_out(slots, "qkv", x, rows, bias, prefill=True)
    assert torch.allclose(prefill, decode, atol=1e-5)
    assert torch.equal(prefill[1], bias.expand(3, 12))  # the base row untouched
    xd = torch.randn(5, 3, 16)
    down_prefill = group_out(slots, "down", xd, rows, prefill=True)
    assert torch.allclose(down_prefill, group_out(slots, "down", xd, rows), atol=1e-5)
    assert slots.prepare(rows) and slots._batch_for == tuple(rows)  # decode cache kept
