"""Reading PEFT LoRA directories into the engine's layout, and refusing what it cannot serve."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from openledger.errors import NotFoundError, ValidationError
from openledger.serving.adapters import load_adapter
from tests.tiny import make_adapter


def test_pairs_are_transposed_with_the_scale_folded_into_b(
    adapters_dir: Path,
) -> None:
    for name in ("ad0", "ad1"):  # ad0 uses rsLoRA (alpha/sqrt(r)), ad1 plain LoRA (alpha/r)
        path = adapters_dir / name
        cfg = json.loads((path / "adapter_config.json").read_text())
        raw = load_file(str(path / "adapter_model.safetensors"))
        adapter = load_adapter(name, path)
        r, alpha = cfg["r"], cfg["lora_alpha"]
        scale = alpha / math.sqrt(r) if cfg["use_rslora"] else alpha / r
        key = "base_model.model.model.layers.1.self_attn.q_proj"
        assert torch.equal(adapter.a[(1, "q_proj")], raw[f"{key}.lora_A.weight"].t())
        assert torch.allclose(adapter.b[(1, "q_proj")], raw[f"{key}.lora_B.weight"].t() * scale)
        assert adapter.max_rank == r
        assert adapter.modules == set(cfg["target_modules"])


def test_alpha_pattern_sets_a_module_scale(
    tiny_base_dir: Path,
    tmp_path: Path,
) -> None:
    path = make_adapter(tiny_base_dir, tmp_path / "p", rank=4, modules=("q_proj", "v_proj"), seed=1)
    cfg = json.loads((path / "adapter_config.json").read_text())
    cfg["alpha_pattern"] = {"v_proj": 2.0}
    (path / "adapter_config.json").write_text(json.dumps(cfg))
    raw = load_file(str(path / "adapter_model.safetensors"))
    adapter = load_adapter("p", path)
    key = "base_model.model.model.layers.0.self_attn"
    assert torch.allclose(adapter.b[(0, "v_proj")], raw[f"{key}.v_proj.lora_B.weight"].t() * 0.5)
    assert torch.allclose(adapter.b[(0, "q_proj")], raw[f"{key}.q_proj.lora_B.weight"].t() * 2.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "whole modules"),
        ({"bias": "all"}, "biases"),
        ({"peft_type": "IA3"}, "not LoRA"),
    ],
)
def test_variants_the_engine_cannot_serve_are_refused(
    adapters_dir: Path,
    tmp_path: Path,
    change: dict,
    message: str,
) -> None:
    path = tmp_path / "x"
    path.mkdir()
    cfg = json.loads((adapters_dir / "ad0" / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**cfg, **change}))
    (path / "adapter_model.safetensors").write_bytes(
        (adapters_dir / "ad0" / "adapter_model.safetensors").read_bytes()
    )
    with pytest.raises(ValidationError, match=message) as info:
        load_adapter("x", path)
    assert info.value.field == "adapter" and info.value.fix


def test_missing_and_damaged_files_say_how_to_fix_them(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="re-publish"):
        load_adapter("gone", tmp_path / "gone")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "adapter_config.json").write_text("{not json")
    (tmp_path / "bad" / "adapter_model.safetensors").write_bytes(b"junk")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_adapter("bad", tmp_path / "bad")
    (tmp_path / "bad" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValidationError, match="cannot be read"):
        load_adapter("bad", tmp_path / "bad")
