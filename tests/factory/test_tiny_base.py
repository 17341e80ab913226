"""The offline tiny base: tokenizer, chat template, pretraining, determinism, atomic save."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from openledger.errors import ConflictError, ValidationError
from openledger.factory import tiny_base as tb
from openledger.factory.base import base_fingerprint, load_base
from openledger.factory.tiny_base import (
    CHAT_TEMPLATE,
    INFO_FILE,
    build_tiny_base,
    read_build_info,
)
from openledger.factory.tiny_config import TinyBaseConfig
from tests.factory.conftest import TEST_TINY_CONFIG, small_corpus


def test_saved_as_a_hugging_face_directory(tiny_base_dir: Path) -> None:
    names = {p.name for p in tiny_base_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", INFO_FILE} <= names
    config = json.loads((tiny_base_dir / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["attn_implementation"] == "eager"
    assert config["tie_word_embeddings"] is True
    # No temporary build directories left beside it.
    assert [p.name for p in tiny_base_dir.parent.iterdir()] == [tiny_base_dir.name]


def test_loads_and_generates(tiny_base_dir: Path) -> None:
    model, tok = load_base(tiny_base_dir)
    assert model.config._attn_implementation == "eager"
    assert not model.training
    info = read_build_info(tiny_base_dir)
    params = sum(p.numel() for p in model.parameters())
    assert params == info["parameters"]
    # 2 layers, hidden 64, vocab 512 (tied): embeddings + attention + MLP + norms.
    h, v, i, n = 64, 512, 128, 2
    assert params == v * h + n * (4 * h * h + 3 * h * i + 2 * h) + h
    enc = tok("The value of", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    assert isinstance(tok.decode(out[0], skip_special_tokens=True), str)


def test_tokenizer_round_trips_and_has_special_tokens(tiny_base_dir: Path) -> None:
    _, tok = load_base(tiny_base_dir)
    text = "Héllo, wörld! 🌍 tabs\tand\nnewlines — 3.14159 <b>tags</b>"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    for marker in ("<|system|>", "<|user|>", "<|assistant|>"):
        # A role marker is one token, never split by BPE.
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1
    assert tok.model_max_length == TEST_TINY_CONFIG.max_position


def test_chat_template_renders_the_documented_format(tiny_base_dir: Path) -> None:
    _, tok = load_base(tiny_base_dir)
    assert tok.chat_template == CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Rayleigh scattering."},
    ]
    assert tok.apply_chat_template(messages, tokenize=False) == (
        "<|bos|><|system|>\nBe brief.<|eos|><|user|>\nWhy is the sky blue?<|eos|>"
        "<|assistant|>\nRayleigh scattering.<|eos|>"
    )
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>\nWhy is the sky blue?<|eos|><|assistant|>\n")
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    with pytest.raises(Exception, match="unknown role"):
        tok.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_loss_decreased(tiny_base_dir: Path) -> None:
    info = read_build_info(tiny_base_dir)
    assert info["initial_loss"] > 5.5  # about ln(512) = 6.2 at random init
    assert info["final_loss"] < info["initial_loss"] - 0.5
    assert info["corpus"]["source"] == "given"
    assert info["config"] == json.loads(json.dumps(TEST_TINY_CONFIG.__dict__))


def test_same_config_gives_identical_weights(tmp_path: Path) -> None:
    quick = replace(TEST_TINY_CONFIG, steps=4)
    corpus = small_corpus(40_000)
    first = build_tiny_base(tmp_path / "first", quick, corpus=corpus, progress=False)
    again = build_tiny_base(tmp_path / "again", quick, corpus=corpus, progress=False)
    assert base_fingerprint(again) == base_fingerprint(first)
    assert (again / "model.safetensors").read_bytes() == (first / "model.safetensors").read_bytes()
    other = build_tiny_base(
        tmp_path / "other", replace(quick, seed=1), corpus=corpus, progress=False
    )
    assert base_fingerprint(other) != base_fingerprint(first)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the build


def test_existing_out_dir_is_left_untouched(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    tiny = replace(TEST_TINY_CONFIG, steps=2)
    corpus = small_corpus(30_000)
    with pytest.raises(ConflictError) as err:
        build_tiny_base(out, tiny, corpus=corpus, progress=False)
    assert err.value.field == "out" and "--overwrite" in (err.value.fix or "")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    build_tiny_base(out, tiny, corpus=corpus, progress=False, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_invalid_config_and_empty_corpus(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        build_tiny_base(tmp_path / "m", replace(TEST_TINY_CONFIG, heads=3), progress=False)
    assert err.value.field == "heads"
    with pytest.raises(ValidationError) as err:
        build_tiny_base(tmp_path / "m", TEST_TINY_CONFIG, corpus=["  ", ""], progress=False)
    assert err.value.field == "corpus"
    assert not (tmp_path / "m").exists()


def test_default_corpus_is_offline_english_and_deterministic() -> None:
    topics = tb.pydoc_topics()
    samples = tb.sample_datanet_texts()
    assert any("ocean" in s.lower() for s in samples)
    corpus = tb.default_corpus(max_chars=200_000)
    assert corpus[: len(samples)] == samples
    assert 200_000 <= sum(map(len, corpus)) < 200_000 + max(map(len, topics))
    assert tb.default_corpus(max_chars=200_000) == corpus


def test_stdlib_docstrings_are_read_without_importing() -> None:
    import sys
    import sysconfig

    root = Path(sysconfig.get_path("stdlib")) / "email"
    before = "email.mime.audio" in sys.modules
    docs = tb.stdlib_docstrings(root)
    assert len(docs) > 50 and sum(map(len, docs)) > 10_000
    assert len(set(docs)) == len(docs) and min(map(len, docs)) >= 40
    assert tb.stdlib_docstrings(root) == docs
    assert ("email.mime.audio" in sys.modules) == before  # read, never imported


def test_default_config_is_in_the_1_to_5_million_range() -> None:
    from transformers import LlamaForCausalLM

    cfg = TinyBaseConfig()
    tok = type("T", (), {"bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 2})()
    with torch.device("meta"):
        model = LlamaForCausalLM(tb.llama_config(cfg, cfg.vocab_size, tok))
    params = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= params <= 5_000_000


def test_cli_builds_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openledger.cli import context
    from openledger.cli import factory as factory_cli
    from openledger.config import Settings

    monkeypatch.setattr(tb, "default_corpus", lambda max_chars: small_corpus(30_000))
    monkeypatch.setattr(context, "_state", {})
    context.set_settings(Settings.load(home=tmp_path / "home"))
    assert factory_cli.default_tiny_base_dir() == tmp_path / "home" / "models" / "tiny-base"
    runner = CliRunner()
    result = runner.invoke(factory_cli.app, ["tiny-base", "--steps", "1"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "home" / "models" / "tiny-base"
    assert str(path) in result.output and "parameters" in result.output
    assert "loss" in result.output and " s" in result.output
    again = runner.invoke(factory_cli.app, ["tiny-base", "--steps", "1"])
    assert isinstance(again.exception, ConflictError)
    result = runner.invoke(
        factory_cli.app, ["tiny-base", "--out", str(tmp_path / "x"), "--steps", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["path"] == str(tmp_path / "x") and doc["config"]["steps"] == 1
