"""Factory fixtures: a very small tiny base, built once per test session (a few seconds).

``tiny_base_dir`` is the Path of a saved Hugging Face directory (config.json,
model.safetensors, tokenizer.json, chat template) that ``load_base`` loads like a real model.
It has the default architecture's module names (a Llama with q/k/v/o, gate/up/down
projections and a tied lm_head) at a smaller size. Treat it as read-only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openledger.factory.tiny_base import (
    TinyBaseConfig,
    build_tiny_base,
    pydoc_topics,
    sample_datanet_texts,
)

#: The config the session's tiny base is built with.
TEST_TINY_CONFIG = TinyBaseConfig(
    vocab_size=512,
    hidden_size=64,
    layers=2,
    heads=4,
    kv_heads=4,
    intermediate_size=128,
    max_position=256,
    seq_len=64,
    batch_size=8,
    steps=40,
    lr=5e-3,
    warmup_steps=5,
    seed=0,
)


def small_corpus(max_chars: int = 150_000) -> list[str]:
    """Sample datanets plus the first Python help topics: enough for a 512-token BPE."""
    docs: list[str] = []
    total = 0
    for doc in sample_datanet_texts() + pydoc_topics():
        if total >= max_chars:
            break
        docs.append(doc)
        total += len(doc)
    return docs


@pytest.fixture(scope="session")
def tiny_base_config() -> TinyBaseConfig:
    return TEST_TINY_CONFIG


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny base directory (shared by the session: do not modify it)."""
    out = tmp_path_factory.mktemp("tiny-base") / "model"
    return build_tiny_base(out, TEST_TINY_CONFIG, corpus=small_corpus(), progress=False)
