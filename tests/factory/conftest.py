"""Factory fixtures: a very small tiny base, built once per test session (a few seconds).

``tiny_base_dir`` is the Path of a saved Hugging Face directory (config.json,
model.safetensors, tokenizer.json, chat template) that ``load_base`` loads like a real model.
It has the default architecture's module names (a Llama with q/k/v/o, gate/up/down
projections and a tied lm_head) at a smaller size. Treat it as read-only.
"""

from __future__ import annotations

import pytest

from openledger.factory.tiny_config import TinyBaseConfig
from tests.tiny import TEST_TINY_CONFIG, small_corpus

__all__ = ["TEST_TINY_CONFIG", "small_corpus"]


@pytest.fixture(scope="session")
def tiny_base_config() -> TinyBaseConfig:
    return TEST_TINY_CONFIG
