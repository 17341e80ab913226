"""What tests build their models from: the tiny base's config and corpus, PEFT LoRA
adapters of it with different ranks and modules, model-table rows for adapters on disk, and
a serving node home whose dev accounts can pay for inference without a chain.

The fixtures that use these (``tiny_base_dir``, ``adapters_dir``) live in the root
conftest, so each is built once per test session, not once per module that imports it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

from openledger.chain.accounts import DEV_NAMES
from openledger.chain.bindings import Params
from openledger.factory.base import load_base
from openledger.factory.corpus import pydoc_topics, sample_datanet_texts
from openledger.factory.tiny_config import TinyBaseConfig
from openledger.ledger.credit.events import credit_row
from openledger.ledger.pricing.params import ParamsCache
from openledger.node import Node
from openledger.store.db import Database
from openledger.store.factory_tables import JobRow, ModelRow
from openledger.units import OPEN

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


DEV_CREDIT = 1_000 * OPEN  # inference credit of each dev account of a serving_node()

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
    dora: bool = False,
) -> Path:
    """A PEFT LoRA (or DoRA) adapter with random (non-zero) A and B, saved like the factory
    saves; a DoRA magnitude is its initial column norm times 1 ± 10 % noise."""
    torch.manual_seed(seed)
    model, _ = load_base(base_dir)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha or 2 * rank,
        target_modules=list(modules),
        init_lora_weights=False,
        use_rslora=rslora,
        use_dora=dora,
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_magnitude_vector" in name:
                p.mul_(1 + 0.1 * torch.randn_like(p))
            elif "lora_" in name:
                p.normal_(0, 0.08)
    peft_model.save_pretrained(out)
    return out


def register_models(
    db: Database,
    base: str,
    adapters: dict[str, Path],
    *,
    owner: str = "0x" + "ab" * 20,
    price_in: int = 10,
    price_out: int = 20,
    first_id: int = 1000,
    snapshot_roots: list[str] | None = None,
) -> None:
    """Rows in the model table for adapters on disk (what ``model publish`` leaves);
    ``snapshot_roots`` are the training snapshots the ledger pays the contributors of."""
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
                    snapshot_roots=list(snapshot_roots or []),
                    index_hash="0x" + "00" * 32,
                    price_in=price_in,
                    price_out=price_out,
                    job_id=job.id,
                    card={},
                    tx_hash="0x" + "00" * 32,
                )
            )


def serving_node(
    home: Path,
    base_dir: Path,
    adapters: dict[str, Path],
    *,
    credit: int = DEV_CREDIT,
    **settings: object,
) -> Node:
    """An initialised node home (CPU serving) whose model table holds ``adapters`` and
    whose dev accounts can pay for inference (``offline_ledger``)."""
    from openledger.home import init_home
    from tests.conftest import PASSWORD, make_settings

    node_settings = make_settings(home, serve_device="cpu", **settings)
    init_home(node_settings, PASSWORD)
    node = Node(node_settings, password_source=lambda: PASSWORD)
    register_models(node.db, str(base_dir), adapters)
    offline_ledger(node, credit)
    return node


def offline_ledger(node: Node, credit: int = DEV_CREDIT) -> None:
    """Let a node with no chain take payments: each dev account holds ``credit`` wei of
    inference credit (the row the event sync writes for a synced deposit), and the ledger
    prices with ProtocolParams' deployed defaults (10/20/20/50 %; with no chain there is no
    Timelock, so the operator stands in as treasury) instead of reading them from a chain.
    Receipts, holds and the split are the real ones; tests of the money itself run on the
    devnet (tests/api/test_paid_inference.py)."""
    with node.db.session() as s:
        for name in DEV_NAMES:
            row = credit_row(s, node.accounts.address(name))
            row.deposited = row.deposited + credit
    params = Params(
        version=1,
        treasury=node.accounts.operator_address(),
        platform_bps=1_000,
        owner_bps=2_000,
        stakers_bps=2_000,
        contributors_bps=5_000,
        min_stake=10 * OPEN,
        slash_bps=5_000,
        stake_unlock_delay=7 * 86_400,
        epoch_length=86_400,
        max_file_bytes=10_000_000,
        max_files_per_day=20,
        escrow_withdraw_delay=86_400,
        root_activation_delay=3_600,
        min_deposit=OPEN,
    )
    node.__dict__["params"] = ParamsCache(lambda: params.version, lambda: params)
