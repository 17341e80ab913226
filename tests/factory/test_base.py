"""Loading a base model: local directories, hub ids offline, broken directories, lineage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from openledger.errors import NotFoundError, ValidationError
from openledger.factory.base import (
    base_fingerprint,
    is_local_ref,
    linear_module_names,
    load_base,
    load_tokenizer,
)

LLAMA_LINEARS = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "lm_head",
]


def _copy(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.name not in skip:
            shutil.copy2(f, dst / f.name)
    return dst


def test_local_directory_loads(tiny_base_dir: Path) -> None:
    model, tok = load_base(tiny_base_dir)
    assert model.dtype == torch.float32
    assert tok.pad_token_id is not None and tok.eos_token_id is not None
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.generation_config.eos_token_id == tok.eos_token_id
    # A str path works as well as a Path.
    model2, _ = load_base(str(tiny_base_dir), dtype=torch.bfloat16)
    assert model2.dtype == torch.bfloat16


def test_attn_implementation_override(tiny_base_dir: Path) -> None:
    model, _ = load_base(tiny_base_dir, attn_implementation="sdpa")
    assert model.config._attn_implementation == "sdpa"


def test_missing_pad_token_falls_back_to_eos(tiny_base_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_base_dir, tmp_path / "nopad")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("pad_token", None)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    _, tok = load_base(d)
    assert tok.pad_token is not None and tok.eos_token == "<|eos|>"


def test_load_tokenizer_matches_load_base_without_weights(
    tiny_base_dir: Path, tmp_path: Path
) -> None:
    _, full = load_base(tiny_base_dir)
    tok = load_tokenizer(tiny_base_dir)
    assert tok.get_vocab() == full.get_vocab()
    assert (tok.eos_token_id, tok.pad_token_id, tok.bos_token_id) == (
        full.eos_token_id,
        full.pad_token_id,
        full.bos_token_id,
    )
    d = _copy(tiny_base_dir, tmp_path / "nopad")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("pad_token", None)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert load_tokenizer(d).pad_token == "<|eos|>"
    with pytest.raises(NotFoundError) as err:
        load_tokenizer(tmp_path / "missing")
    assert err.value.field == "base"


def test_hub_id_offline_is_not_found_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFoundError) as err:
        load_base("openledger-test/definitely-not-cached")
    exc = err.value
    assert exc.field == "base" and exc.value == "openledger-test/definitely-not-cached"
    assert "HF_HUB_OFFLINE" in exc.message and "openledger-test/definitely-not-cached" in str(exc)
    assert "tiny base" in (exc.fix or "")
    assert "local Hugging Face directory" in (exc.fix or "")
    assert "pre-download" in (exc.fix or "")


def test_missing_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        load_base(tmp_path / "nope")
    assert err.value.field == "base" and "no such directory" in err.value.message
    with pytest.raises(NotFoundError):
        load_base("./relative/nope")


@pytest.mark.parametrize(
    ("skip", "expected"),
    [
        (("config.json",), "config.json is missing"),
        (("model.safetensors",), "no weight file"),
        (("tokenizer.json", "tokenizer_config.json"), "no tokenizer files"),
    ],
)
def test_not_a_model_directory(
    tiny_base_dir: Path, tmp_path: Path, skip: tuple[str, ...], expected: str
) -> None:
    d = _copy(tiny_base_dir, tmp_path / "broken", skip=skip)
    with pytest.raises(ValidationError) as err:
        load_base(d)
    assert err.value.field == "base" and err.value.value == str(d)
    assert expected in err.value.message and err.value.fix


def test_empty_dir_file_and_adapter_dir(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match=r"config\.json is missing"):
        load_base(tmp_path / "empty")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ValidationError, match="not a directory"):
        load_base(tmp_path / "file.bin")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ValidationError, match="LoRA adapter"):
        load_base(tmp_path / "adapter")


def test_broken_weights_and_config(tiny_base_dir: Path, tmp_path: Path) -> None:
    d = _copy(tiny_base_dir, tmp_path / "truncated")
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(ValidationError) as err:
        load_base(d)
    assert "could not be loaded" in err.value.message

    d = _copy(tiny_base_dir, tmp_path / "mismatch")
    cfg = json.loads((d / "config.json").read_text())
    cfg["hidden_size"] = 96
    cfg["num_hidden_layers"] = 3
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValidationError) as err:
        load_base(d)
    assert "base " in err.value.message

    d = _copy(tiny_base_dir, tmp_path / "badjson")
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_base(d)


def test_fingerprint(tiny_base_dir: Path, tmp_path: Path) -> None:
    fp = base_fingerprint(tiny_base_dir)
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    copy = _copy(tiny_base_dir, tmp_path / "copy")
    assert base_fingerprint(copy) == fp
    # Build notes don't count; weights and tokenizer do.
    (copy / "openledger-tiny-base.json").write_text("{}")
    (copy / "README.md").write_text("notes")
    assert base_fingerprint(copy) == fp
    (copy / "tokenizer_config.json").write_text((copy / "tokenizer_config.json").read_text() + " ")
    assert base_fingerprint(copy) != fp
    assert base_fingerprint("meta-llama/Llama-3.2-1B") == "hub:meta-llama/Llama-3.2-1B"
    with pytest.raises(ValidationError):
        base_fingerprint(tmp_path)


def test_local_or_hub() -> None:
    assert not is_local_ref("gpt2")
    assert not is_local_ref("meta-llama/Llama-3.2-1B")
    assert is_local_ref("./gpt2") and is_local_ref("/abs/dir") and is_local_ref("~/m")
    assert is_local_ref("a/b/c") and is_local_ref(Path("gpt2"))


def test_linear_module_names(tiny_base_dir: Path) -> None:
    model, _ = load_base(tiny_base_dir)
    assert linear_module_names(model) == LLAMA_LINEARS
