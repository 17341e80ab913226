"""Serving fixtures: PEFT LoRA adapters of the tiny base with different ranks and modules,
and rows for them in a node's model table (the registry the engine serves from)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model

from openledger.factory.base import load_base
from openledger.store.db import Database
from openledger.store.factory_tables import JobRow, ModelRow
from tests.factory.conftest import tiny_base_dir  # noqa: F401 - the shared fixture

RANKS = (2, 4, 8, 16)
MODULE_SETS = (
    ("q_proj", "v_proj"),
    ("q_proj", "k_proj", "v_proj", "o_proj"),
    ("gate_proj", "up_proj", "down_proj"),
    ("q_proj", "v_proj", "down_proj"),
)


def make_adapter(
    base_dir: Path,
    out: Path,
    *,
    rank: int,
    modules: tuple[str, ...],
    seed: int,
    alpha: float | None = None,
    rslora: bool = False,
) -> Path:
    """A PEFT LoRA adapter with random (non-zero) A and B, saved like the factory saves."""
    torch.manual_seed(seed)
    model, _ = load_base(base_dir)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha or 2 * rank,
        target_modules=list(modules),
        init_lora_weights=False,
        use_rslora=rslora,
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.08)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def adapters_dir(tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """16 adapters ``ad0`` … ``ad15``: ranks 2/4/8/16, four module sets, some rsLoRA."""
    root = tmp_path_factory.mktemp("adapters")
    for i in range(16):
        make_adapter(
            tiny_base_dir,
            root / f"ad{i}",
            rank=RANKS[i % 4],
            modules=MODULE_SETS[(i // 4) % 4],
            seed=100 + i,
            alpha=2 * RANKS[i % 4] + i,
            rslora=i % 3 == 0,
        )
    return root


def register_models(
    db: Database,
    base: str,
    adapters: dict[str, Path],
    *,
    owner: str = "0x" + "ab" * 20,
    price_in: int = 10,
    price_out: int = 20,
    first_id: int = 1000,
) -> None:
    """Rows in the model table for adapters on disk (what ``model publish`` leaves)."""
    with db.session() as s:
        job = JobRow(kind="train", status="succeeded", params={}, result={}, work_dir="")
        s.add(job)
        s.flush()
        for i, (name, path) in enumerate(sorted(adapters.items())):
            s.add(
                ModelRow(
                    chain_id=first_id + i,
                    name=name,
                    owner=owner,
                    base=base,
                    base_fingerprint="",
                    adapter_sha="00" * 32,
                    adapter_dir=str(path),
                    snapshot_roots=[],
                    index_hash="0x" + "00" * 32,
                    price_in=price_in,
                    price_out=price_out,
                    job_id=job.id,
                    card={},
                    tx_hash="0x" + "00" * 32,
                )
            )
