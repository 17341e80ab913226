"""ModelRegistry: registration, lineage views, owner-only price/index changes, transfer."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import OPEN, ZERO, ZERO32, events, h

ROOTS = [h("snap-1"), h("snap-2")]


@pytest.fixture
def model(models: Any, system: Any) -> int:
    with boa.env.prank(system.alice):
        return models.registerModel(
            "tiny-llama", h("adapter"), ROOTS, h("index"), 2 * OPEN, 3 * OPEN, "ipfs://m"
        )


def test_register_model(models: Any, system: Any) -> None:
    assert models.modelCount() == 0
    with boa.env.prank(system.alice):
        mid = models.registerModel(
            "tiny-llama", h("adapter"), ROOTS, h("index"), 2 * OPEN, 3 * OPEN, "ipfs://m"
        )
    (ev,) = events(models, "ModelRegistered")
    assert (ev.model_id, ev.owner, ev.base_model, ev.adapter_hash, ev.index_hash) == (
        1,
        system.alice,
        "tiny-llama",
        h("adapter"),
        h("index"),
    )
    assert (ev.price_in, ev.price_out) == (2 * OPEN, 3 * OPEN)
    assert mid == 1 and models.modelCount() == 1
    assert models.models(1) == (
        system.alice,
        "tiny-llama",
        h("adapter"),
        h("index"),
        2 * OPEN,
        3 * OPEN,
        "ipfs://m",
        boa.env.timestamp,
    )
    assert models.getSnapshotRoots(1) == ROOTS
    with boa.env.prank(system.bob):
        assert models.registerModel("b" * 128, ZERO32, [], ZERO32, 0, 0, "u" * 256) == 2
    assert models.getSnapshotRoots(2) == []
    assert models.models(2)[1] == "b" * 128


def test_max_snapshot_roots(models: Any, system: Any) -> None:
    roots = [h(f"r{i}") for i in range(16)]
    with boa.env.prank(system.alice):
        mid = models.registerModel("m", h("a"), roots, h("i"), 1, 1, "")
    assert models.getSnapshotRoots(mid) == roots


def test_unknown_model_views_are_empty(models: Any) -> None:
    assert models.models(5) == (ZERO, "", ZERO32, ZERO32, 0, 0, "", 0)
    assert models.getSnapshotRoots(5) == []


def test_set_prices(models: Any, system: Any, model: int) -> None:
    with boa.env.prank(system.alice):
        models.setPrices(model, 5, 7)
    (ev,) = events(models, "PricesChanged")
    assert (ev.model_id, ev.price_in, ev.price_out) == (model, 5, 7)
    assert models.models(model)[4:6] == (5, 7)


def test_set_index_hash(models: Any, system: Any, model: int) -> None:
    with boa.env.prank(system.alice):
        models.setIndexHash(model, h("index-2"))
    (ev,) = events(models, "IndexHashChanged")
    assert (ev.model_id, ev.index_hash) == (model, h("index-2"))
    assert models.models(model)[3] == h("index-2")


def test_transfer_model(models: Any, system: Any, model: int) -> None:
    with boa.env.prank(system.alice):
        with boa.reverts("ModelRegistry: new owner is the zero address"):
            models.transferModel(model, ZERO)
        models.transferModel(model, system.bob)
    (ev,) = events(models, "ModelTransferred")
    assert (ev.model_id, ev.old_owner, ev.new_owner) == (model, system.alice, system.bob)
    assert models.models(model)[0] == system.bob
    with boa.env.prank(system.alice), boa.reverts("ModelRegistry: not the model owner"):
        models.setPrices(model, 1, 1)
    with boa.env.prank(system.bob):
        models.setPrices(model, 1, 1)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        ("setPrices", (1, 1)),
        ("setIndexHash", (h("x"),)),
        ("transferModel", ("0x" + "11" * 20,)),
    ],
)
def test_owner_only_and_unknown(models: Any, system: Any, model: int, fn: str, args: tuple) -> None:
    with boa.env.prank(system.bob), boa.reverts("ModelRegistry: not the model owner"):
        getattr(models, fn)(model, *args)
    with boa.env.prank(system.alice):
        for unknown in (0, model + 1):
            with boa.reverts("ModelRegistry: unknown model"):
                getattr(models, fn)(unknown, *args)
