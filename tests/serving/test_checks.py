"""What publishing asks the engine, from files alone: which path a base takes, and whether an
adapter fits it (native bases from their shape, any other from a model on the meta device)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import transformers

from openledger.errors import ValidationError
from openledger.factory.base import load_tokenizer
from openledger.serving.checks import check_adapter, engine_path
from tests.tiny import make_adapter


def test_the_engine_path_is_read_from_the_config(tiny_base_dir: Path, tmp_path: Path) -> None:
    assert engine_path(str(tiny_base_dir)) == ("native", "llama")
    transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2).save_pretrained(tmp_path / "gpt2")
    assert engine_path(str(tmp_path / "gpt2")) == ("generic", "gpt2")
    bidirectional = transformers.Gemma3TextConfig(use_bidirectional_attention=True)
    bidirectional.save_pretrained(tmp_path / "embed")  # an embedding model: not causal
    assert engine_path(str(tmp_path / "embed")) == ("generic", "gemma3_text")
    assert engine_path(str(tmp_path / "missing")) == ("", "")


def test_adapters_are_checked_against_a_generic_base(
    tiny_base_dir: Path, adapters_dir: Path, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(tiny_base_dir)
    config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=len(tokenizer))
    base = tmp_path / "gpt2"
    transformers.GPT2LMHeadModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    own = make_adapter(base, tmp_path / "own", rank=4, modules=("c_attn",), seed=1)
    check_adapter("own", own, str(base))  # Conv1D + fan_in_fan_out: served by PEFT
    with pytest.raises(ValidationError, match="was trained on .*tiny-base"):
        check_adapter("llama", adapters_dir / "ad0", str(base))  # its config names its base
    renamed = tmp_path / "renamed"  # the same Llama adapter, claiming the GPT-2 base
    shutil.copytree(adapters_dir / "ad0", renamed)
    cfg = json.loads((renamed / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(base)
    (renamed / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValidationError, match=r"adapts 'model\.layers\.0\..*this base \(gpt2\)"):
        check_adapter("renamed", renamed, str(base))
