"""Reading PEFT LoRA directories into the engine's layout, and refusing what it cannot serve."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, LlamaForCausalLM

from openledger.errors import NotFoundError, ValidationError
from openledger.factory.base import load_tokenizer
from openledger.serving.adapters import BaseFit, load_adapter
from openledger.serving.arch import DecoderShape, native_spec
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


def fit_of(base: Path, max_rank: int = 64) -> BaseFit:
    config = AutoConfig.from_pretrained(base)
    spec = native_spec(config)
    assert spec is not None
    shape = DecoderShape.from_config(config)
    return BaseFit(config.model_type, shape.layers, shape.target_shapes(spec), max_rank)


def test_an_adapter_that_does_not_fit_the_base_names_the_file_and_the_mismatch(
    tiny_base_dir: Path, adapters_dir: Path, tmp_path: Path
) -> None:
    fit = fit_of(tiny_base_dir)
    weights = str(adapters_dir / "ad3" / "adapter_model.safetensors")
    load_adapter("ad3", adapters_dir / "ad3", fit=fit)  # rank 16 fits a limit of 64
    with pytest.raises(ValidationError, match=r"rank 16, above the engine's limit of 8") as info:
        load_adapter("ad3", adapters_dir / "ad3", fit=fit_of(tiny_base_dir, max_rank=8))
    assert weights in info.value.message and "max_lora_rank" in info.value.fix
    # Trained on a base with 2 key/value heads instead of 4: k_proj is 64 → 32 there.
    other = tmp_path / "other"
    config = AutoConfig.from_pretrained(tiny_base_dir)
    config.num_key_value_heads = 2
    LlamaForCausalLM(config).save_pretrained(other)
    load_tokenizer(tiny_base_dir).save_pretrained(other)
    foreign = make_adapter(other, tmp_path / "foreign", rank=4, modules=("k_proj",), seed=1)
    with pytest.raises(
        ValidationError,
        match=r"k_proj\.lora_B has shape \(32, 4\); this base "
        r"\(llama, k_proj 64 → 64\) needs \(64, 4\)",
    ) as info:
        load_adapter("foreign", foreign, fit=fit)
    assert str(foreign / "adapter_model.safetensors") in info.value.message
    assert "trained on another base" in info.value.fix
    # A module this architecture does not have (Phi-3's fused qkv_proj on a Llama).
    fused = tmp_path / "fused"
    fused.mkdir()
    (fused / "adapter_config.json").write_text((foreign / "adapter_config.json").read_text())
    save_file(
        {
            "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight": torch.zeros(4, 64),
            "base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight": torch.zeros(192, 4),
        },
        str(fused / "adapter_model.safetensors"),
    )
    with pytest.raises(ValidationError, match="adapts 'qkv_proj', which this base \\(llama\\)"):
        load_adapter("fused", fused, fit=fit)


def test_a_truncated_safetensors_file_is_refused_by_name(
    adapters_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text(
        (adapters_dir / "ad0" / "adapter_config.json").read_text()
    )
    data = (adapters_dir / "ad0" / "adapter_model.safetensors").read_bytes()
    (broken / "adapter_model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValidationError, match="cannot be read") as info:
        load_adapter("broken", broken)
    assert str(broken / "adapter_model.safetensors") in info.value.message
