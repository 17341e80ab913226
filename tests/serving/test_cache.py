"""The host tier: bounded in bytes, least recently used first, loads in the background."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from openledger.errors import ValidationError
from openledger.serving.adapters import LoraAdapter
from openledger.serving.cache import AdapterCache


def adapter(name: str, rank: int) -> LoraAdapter:
    """An adapter of 4·rank·(16 + 16) bytes (float32, one linear 16 → 16)."""
    return LoraAdapter(
        name, {(0, "q_proj"): torch.zeros(16, rank)}, {(0, "q_proj"): torch.zeros(rank, 16)}
    )


SIZES = {"r2": 2, "r4": 4, "r8": 8, "r64": 64}


def test_the_budget_is_bytes_and_eviction_is_least_recently_used() -> None:
    loaded: list[str] = []

    def loader(name: str, path: Path) -> LoraAdapter:
        loaded.append(name)
        return adapter(name, SIZES[name])

    cache = AdapterCache(lambda n: Path(n), loader, capacity_bytes=2 * 1024 + 512)
    assert adapter("r8", 8).nbytes == 1024 and adapter("r4", 4).nbytes == 512
    cache.load_now("r8")
    cache.load_now("r4")
    assert cache.nbytes == 1536 and cache.resident == ["r8", "r4"]
    assert "r8" in cache and cache.resident == ["r8", "r4"]  # `in` does not touch the order
    cache.get("r8")  # now r4 is the least recently used
    cache.load_now("r2")  # 1792 bytes: fits
    cache.load_now("r4")  # already there: not loaded again, marked used
    assert loaded == ["r8", "r4", "r2"] and cache.evictions == 0
    cache.get("r8")  # order now r2, r4, r8
    cache._store(adapter("big", 12))  # 1536 bytes: r2 then r4 (least recent) make room
    assert cache.resident == ["r8", "big"] and cache.nbytes == 2560 and cache.evictions == 2


def test_an_adapter_larger_than_the_tier_fails_its_load_by_name() -> None:
    done = threading.Event()
    cache = AdapterCache(
        lambda n: Path(n),
        lambda name, path: adapter(name, 64),
        capacity_bytes=4096,
        on_ready=done.set,
    )
    cache.request("r64")  # 8192 bytes
    assert done.wait(10)
    error = cache.take_error("r64")
    assert isinstance(error, ValidationError) and "8,192 bytes" in error.message
    assert "host_tier_mb" in error.fix and cache.resident == [] and cache.nbytes == 0
    with pytest.raises(ValidationError):
        cache.load_now("r64")
    cache.close()
