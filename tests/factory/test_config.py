"""factory.config: reading a mapping and refusing bad settings with the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from openledger.errors import ValidationError
from openledger.factory import config as config_mod
from openledger.factory.config import TrainConfig, linear_module_paths
from tests.factory.test_data import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def model() -> Any:
    return tiny_model(tiny_tokenizer())


def test_defaults_are_valid(model: Any) -> None:
    cfg = TrainConfig()
    assert cfg.validate(model) is cfg
    assert cfg.method == "lora" and cfg.target_modules == ("q_proj", "v_proj")
    assert TrainConfig.from_mapping(cfg.to_dict()) == cfg


def test_from_mapping_reads_yaml_style_values() -> None:
    cfg = TrainConfig.from_mapping(
        {
            "method": "DoRA",
            "rank": "16",
            "alpha": 32,
            "lr": "1e-3",
            "max-seq-len": 128,
            "target_modules": "q_proj, k_proj,v_proj",
            "eval_every": None,
            "patience": None,
            "group_by_length": "false",
            "max_grad_norm": None,
            "epochs": 2.0,
        }
    )
    assert cfg.method == "dora" and cfg.rank == 16 and cfg.alpha == 32.0 and cfg.lr == 1e-3
    assert cfg.max_seq_len == 128 and cfg.epochs == 2
    assert cfg.target_modules == ("q_proj", "k_proj", "v_proj")
    assert cfg.patience is None and cfg.group_by_length is False and cfg.max_grad_norm is None
    assert cfg.to_dict()["target_modules"] == ["q_proj", "k_proj", "v_proj"]


def test_unknown_key_names_it_and_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig.from_mapping({"rank": 8, "learning_rate": 1e-4})
    assert err.value.field == "learning_rate"
    assert "learning_rate" in str(err.value) and "lr" in err.value.fix


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"rank": "eight"}, "rank"),
        ({"rank": True}, "rank"),
        ({"lr": "fast"}, "lr"),
        ({"target_modules": 3}, "target_modules"),
        ({"group_by_length": "maybe"}, "group_by_length"),
        ({"method": 1}, "method"),
        ({"lr": "nan"}, "lr"),
    ],
)
def test_wrong_types_name_the_field(mapping: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig.from_mapping(mapping)
    assert err.value.field == field and err.value.fix


def test_not_a_mapping() -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig.from_mapping(["rank", 8])  # type: ignore[arg-type]
    assert err.value.field == "config"


@pytest.mark.parametrize(
    ("changes", "field", "fix_part"),
    [
        ({"rank": 0}, "rank", "e.g. 8"),
        ({"alpha": 0}, "alpha", "twice the rank"),
        ({"eval_split": -0.1}, "eval_split", "e.g. 0.1"),
        ({"eval_split": 1.0}, "eval_split", "e.g. 0.1"),
        ({"lr": 0.0}, "lr", "1e-4"),
        ({"epochs": 0}, "epochs", "e.g. 1"),
        ({"batch_size": 0}, "batch_size", "e.g. 8"),
        ({"max_seq_len": 4}, "max_seq_len", "e.g. 256"),
        ({"method": "full"}, "method", "lora, dora, qlora"),
        ({"dropout": 1.0}, "dropout", "0"),
        ({"patience": 0}, "patience", "e.g. 3"),
        ({"keep_checkpoints": 0}, "keep_checkpoints", "e.g. 2"),
        ({"eval_every": 0}, "eval_every", "e.g. 50"),
        ({"schedule": "step"}, "schedule", "cosine"),
        ({"target_modules": ()}, "target_modules", "q_proj"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(
    changes: dict[str, Any], field: str, fix_part: str
) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(**changes).validate()
    assert err.value.field == field
    assert field in str(err.value) or str(err.value.value) in str(err.value)
    assert fix_part in err.value.fix


def test_unknown_target_module_lists_the_models_linear_layers(model: Any) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(target_modules=("q_proj", "query")).validate(model)
    assert err.value.field == "target_modules" and err.value.value == "query"
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert name in err.value.fix
    assert "'query'" in str(err.value)
    # dotted suffixes and all-linear are accepted, as PEFT accepts them
    TrainConfig(target_modules=("self_attn.q_proj", "mlp.down_proj")).validate(model)
    TrainConfig(target_modules=("all-linear",)).validate(model)
    assert "model.layers.0.self_attn.q_proj" in linear_module_paths(model)


def test_max_seq_len_beyond_the_models_context(model: Any) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(max_seq_len=1024).validate(model)
    assert err.value.field == "max_seq_len" and "256" in err.value.fix


def test_qlora_on_cpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValidationError) as err:
        TrainConfig(method="qlora").validate()
    assert err.value.field == "method" and err.value.value == "qlora"
    assert "GPU" in str(err.value) and "the method lora" in err.value.fix


def test_qlora_without_bitsandbytes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(config_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValidationError) as err:
        TrainConfig(method="qlora").validate()
    assert err.value.field == "method" and "bitsandbytes" in str(err.value)
    assert "pip install bitsandbytes" in err.value.fix
