"""A tiny base with a LoRA adapter trained on a small synthetic datanet (once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openledger.attribution.quality.harness import HarnessConfig, train_adapter
from openledger.attribution.quality.synthetic import SyntheticDatanet, make_datanet
from openledger.factory.data import Example


@dataclass
class Trained:
    base_dir: Path
    adapter_dir: Path
    work: Path
    data: SyntheticDatanet
    examples: list[Example]


SMALL = HarnessConfig(
    owners=4,
    facts_per_owner=3,
    facts_step=0,
    noise_records=3,
    loco=False,
    lds_subsets=0,
    proj_dim=64,
)
SMALL.train.update(epochs=3, lr=5e-3, checkpoint_every=4, keep_checkpoints=3)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_base_dir: Path) -> Trained:
    data = make_datanet(
        owners=SMALL.owners,
        facts_per_owner=SMALL.facts_per_owner,
        noise_records=SMALL.noise_records,
        queries_per_owner=None,
        query_template="owner",
        seed=0,
    )
    work = tmp_path_factory.mktemp("attr-train")
    _, _, examples = train_adapter(tiny_base_dir, data.rows, work, SMALL)
    return Trained(tiny_base_dir, work / "adapter", work, data, examples)


def loaded(t: Trained) -> tuple[Any, Any]:
    from openledger.attribution.gradient.loading import ModelSpec

    return ModelSpec(str(t.base_dir), str(t.adapter_dir)).load()
