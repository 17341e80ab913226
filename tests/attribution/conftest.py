"""A tiny base with a LoRA adapter trained on a small synthetic datanet (once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openledger.attribution.quality.synthetic import SyntheticDatanet, make_datanet
from openledger.factory.base import load_base
from openledger.factory.config import TrainConfig
from openledger.factory.data import Example, build_examples
from openledger.factory.trainer import Trainer


@dataclass
class Trained:
    base_dir: Path
    adapter_dir: Path
    work: Path
    data: SyntheticDatanet
    examples: list[Example]


TRAIN = {
    "rank": 8,
    "alpha": 16,
    "target_modules": "all-linear",
    "lr": 5e-3,
    "epochs": 3,
    "batch_size": 8,
    "max_seq_len": 64,
    "patience": None,
    "checkpoint_every": 4,
    "keep_checkpoints": 3,
    "group_by_length": False,
    "max_grad_norm": 1.0,
    "seed": 0,
}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_base_dir: Path) -> Trained:
    data = make_datanet(
        owners=4,
        facts_per_owner=3,
        noise_records=3,
        queries_per_owner=None,
        query_template="owner",
        seed=0,
    )
    work = tmp_path_factory.mktemp("attr-train")
    model, tokenizer = load_base(tiny_base_dir)
    examples = build_examples(data.rows, tokenizer, max_seq_len=64, snapshot="synthetic@1")
    trainer = Trainer(
        model,
        tokenizer,
        examples,
        examples[:8],
        TrainConfig.from_mapping(TRAIN),
        work,
        progress=False,
    )
    trainer.run(resume=False)
    return Trained(tiny_base_dir, work / "adapter", work, data, examples)


def loaded(t: Trained) -> tuple[Any, Any]:
    import torch

    from openledger.attribution.gradient.loading import ModelSpec

    return ModelSpec(str(t.base_dir), str(t.adapter_dir)).load(dtype=torch.float64)
