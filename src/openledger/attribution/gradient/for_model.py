"""What a published model's gradient index is built from: the examples its adapter was
trained on (rebuilt from the snapshot exactly as the trainer built them and checked against
the lineage shipped with the adapter) and the checkpoints to ensemble."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from openledger.attribution.gradient.build import BuildParams, BuildPlan, CheckpointRef
from openledger.attribution.gradient.loading import ModelSpec
from openledger.datanets.snapshots import SnapshotService
from openledger.errors import ConflictError, ValidationError
from openledger.factory.base import load_tokenizer
from openledger.factory.config import TrainConfig
from openledger.factory.data import Example, build_examples, split_eval
from openledger.factory.jobs import JobService


def training_examples(
    model: dict[str, Any], jobs: JobService, snapshots: SnapshotService, tokenizer: Any
) -> list[Example]:
    """The examples ``model``'s adapter was trained on, in the trainer's order."""
    params = jobs.get(model["job"])["params"]
    config = TrainConfig.from_mapping(params["config"])
    ref = f"{params['datanet']}@{params['version']}"
    table = snapshots.table(params["datanet"], params["version"])
    examples = build_examples(
        table.to_pylist(), tokenizer, max_seq_len=config.max_seq_len, snapshot=ref
    )
    train, _ = split_eval(examples, config.eval_split, config.seed)
    lineage_path = Path(model["adapter_dir"]) / "training_examples.json"
    if lineage_path.exists():
        expected = [e["example_id"] for e in json.loads(lineage_path.read_text())["train"]]
        if expected != [e.example_id for e in train]:
            raise ConflictError(
                f"The examples rebuilt from {ref} differ from those model {model['name']!r} "
                f"was trained on ({len(train)} vs {len(expected)}).",
                field="model",
                value=model["name"],
                fix="check that the snapshot blob and the base tokenizer "
                "are the ones the job used.",
            )
    return train


def checkpoint_refs(model: dict[str, Any], jobs: JobService, count: int) -> list[CheckpointRef]:
    """The published adapter, then the ``count - 1`` latest training checkpoints."""
    if count < 1:
        raise ValidationError(
            f"checkpoints {count} is below 1.",
            field="checkpoints",
            value=count,
            fix="use 1 (the published adapter) or more.",
        )
    refs = [CheckpointRef("published", model["adapter_sha256"])]
    if count == 1:
        return refs
    folder = Path(jobs.get(model["job"])["work_dir"]) / "checkpoints"
    found = sorted(folder.glob("step-*/adapter.safetensors"), reverse=True)
    if len(found) < count - 1:
        raise ValidationError(
            f"Model {model['name']!r} has {len(found)} training checkpoints on this node; "
            f"checkpoints {count} needs {count - 1} besides the published adapter.",
            field="checkpoints",
            value=count,
            fix=f"use {len(found) + 1} checkpoints or fewer (or retrain with a larger "
            "keep_checkpoints).",
        )
    return refs + [
        CheckpointRef(p.parent.name, hashlib.sha256(p.read_bytes()).hexdigest(), str(p))
        for p in found[: count - 1]
    ]


def model_plan(
    model: dict[str, Any],
    jobs: JobService,
    snapshots: SnapshotService,
    *,
    proj_dim: int,
    checkpoints: int,
    damping: float | None,
    seed: int,
) -> BuildPlan:
    """The build plan of a published model's gradient index."""
    spec = ModelSpec(model["base"], model["adapter_dir"])
    tokenizer = load_tokenizer(model["base"])  # build_index loads the model itself
    params = jobs.get(model["job"])["params"]
    return BuildPlan(
        spec=spec,
        examples=training_examples(model, jobs, snapshots, tokenizer),
        checkpoints=checkpoint_refs(model, jobs, checkpoints),
        params=BuildParams(
            proj_dim=proj_dim, seed=seed, **({} if damping is None else {"damping": damping})
        ),
        identity={
            "model": model["name"],
            "model_id": model["id"],
            "adapter_sha256": model["adapter_sha256"],
            "base": model["base"],
            "base_fingerprint": model["base_fingerprint"],
            "snapshot": f"{params['datanet']}@{params['version']}",
            "snapshot_root": params["snapshot_root"],
            "max_seq_len": TrainConfig.from_mapping(params["config"]).max_seq_len,
        },
    )
