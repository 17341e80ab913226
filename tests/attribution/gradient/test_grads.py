from __future__ import annotations

import pytest
import torch

from openledger.attribution.gradient.grads import (
    FusedGrads,
    VmapGrads,
    example_losses,
    make_grads,
    module_shapes,
)
from openledger.attribution.gradient.projection import Projection
from openledger.errors import ValidationError
from openledger.factory.base import load_base
from openledger.factory.config import TrainConfig
from openledger.factory.train_ops import wrap


def _peft(base_dir, **cfg):
    model, _ = load_base(base_dir, attn_implementation="eager")
    torch.manual_seed(0)
    pm = wrap(model, TrainConfig(**cfg))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.05)
    return pm.eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 500, (5, 18), generator=g)
    labels = ids.clone()
    labels[:, :4] = -100
    ids[2, 12:], labels[2, 12:] = 0, -100  # a right-padded, shorter example
    return ids, labels


@pytest.mark.parametrize("cap", [1 << 16, 16])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_fused_equals_vmap(tiny_base_dir, cap: int, reduction: str) -> None:
    pm = _peft(tiny_base_dir, rank=4, target_modules=("q_proj", "v_proj", "down_proj"))
    proj = Projection.for_modules(module_shapes(pm), k=48, seed=3, cap=cap)
    ids, labels = _batch()
    fused = FusedGrads(pm, proj, reduction)(ids, labels)
    ref = VmapGrads(pm, proj, reduction)(ids, labels)
    assert fused.shape == (5, 48)
    assert torch.allclose(fused, ref, atol=1e-5, rtol=1e-4)


def test_unprojected_vmap_gradient_is_the_autograd_gradient(tiny_base_dir) -> None:
    pm = _peft(tiny_base_dir, rank=2, target_modules=("q_proj",))
    proj = Projection.for_modules(module_shapes(pm), k=8, seed=0)
    ids, labels = _batch()
    per_example = VmapGrads(pm, proj).full(ids, labels)
    name = next(n for n, _ in pm.named_parameters() if "lora_A" in n)
    param = dict(pm.named_parameters())[name]
    param.requires_grad_(True)
    loss = example_losses(pm(input_ids=ids[1:2]).logits, labels[1:2], "sum").sum()
    (grad,) = torch.autograd.grad(loss, [param])
    assert torch.allclose(per_example[0][0][1], grad, atol=1e-6)


def test_a_padded_example_gets_the_gradient_it_gets_alone(tiny_base_dir) -> None:
    pm = _peft(tiny_base_dir, rank=4, target_modules=("q_proj", "v_proj"))
    proj = Projection.for_modules(module_shapes(pm), k=32, seed=3)
    ids, labels = _batch()
    grads = FusedGrads(pm, proj)
    together = grads(ids, labels)[2]
    alone = grads(ids[2:3, :12], labels[2:3, :12])[0]
    assert torch.allclose(together, alone, atol=1e-5, rtol=1e-4)


def test_dora_uses_vmap_and_fused_refuses_it(tiny_base_dir) -> None:
    pm = _peft(tiny_base_dir, method="dora", rank=2, target_modules=("q_proj",))
    proj = Projection.for_modules(module_shapes(pm), k=8, seed=0)
    assert isinstance(make_grads(pm, proj), VmapGrads)
    with pytest.raises(ValidationError) as err:
        FusedGrads(pm, proj)
    assert err.value.field == "grads"
    ids, labels = _batch()
    assert make_grads(pm, proj)(ids, labels).shape == (5, 8)


def test_bad_reduction_and_no_lora(tiny_base_dir) -> None:
    pm = _peft(tiny_base_dir, rank=2, target_modules=("q_proj",))
    proj = Projection.for_modules(module_shapes(pm), k=8, seed=0)
    with pytest.raises(ValidationError) as err:
        FusedGrads(pm, proj, "max")
    assert err.value.field == "loss_reduction"
    base, _ = load_base(tiny_base_dir)
    with pytest.raises(ValidationError) as err:
        module_shapes(base)
    assert err.value.field == "model"
