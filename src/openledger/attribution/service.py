"""Attribution for published models: building their indexes and answering queries.

Indexes live in ``<home>/attribution/<model>/<method>/``. The training examples are
rebuilt from the model's snapshot exactly as the trainer built them (same tokenizer,
``max_seq_len``, eval split and seed) and checked against the lineage shipped with the
adapter, so row i of the index is the i-th example the adapter was trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openledger.attribution.gradient.attributor import GradientAttributor
from openledger.attribution.gradient.build import (
    BuildParams,
    BuildPlan,
    CheckpointRef,
    build_index,
)
from openledger.attribution.gradient.index import META, GradientIndex
from openledger.attribution.gradient.loading import ModelSpec
from openledger.attribution.types import Attribution
from openledger.datanets.snapshots import SnapshotService
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.factory.config import TrainConfig
from openledger.factory.data import Example, build_examples, split_eval
from openledger.factory.jobs import JobService
from openledger.factory.publish import ModelService

METHODS = ("gradient",)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class AttributionService:
    models: ModelService
    jobs: JobService
    snapshots: SnapshotService
    root: Path
    _attributors: dict[str, GradientAttributor] = field(default_factory=dict, repr=False)

    def index_dir(self, model_name: str, method: str = "gradient") -> Path:
        return self.root / model_name / method

    # ------------------------------------------------------------------ build

    def training_examples(self, model: dict[str, Any], tokenizer: Any) -> list[Example]:
        """The examples ``model``'s adapter was trained on, in the trainer's order."""
        job = self.jobs.get(model["job"])
        params = job["params"]
        config = TrainConfig.from_mapping(params["config"])
        ref = f"{params['datanet']}@{params['version']}"
        table = self.snapshots.table(params["datanet"], params["version"])
        examples = build_examples(
            table.to_pylist(), tokenizer, max_seq_len=config.max_seq_len, snapshot=ref
        )
        train, _ = split_eval(examples, config.eval_split, config.seed)
        lineage_path = Path(model["adapter_dir"]) / "training_examples.json"
        if lineage_path.exists():
            expected = [e["example_id"] for e in json.loads(lineage_path.read_text())["train"]]
            if expected != [e.example_id for e in train]:
                raise ConflictError(
                    f"The examples rebuilt from {ref} differ from those model "
                    f"{model['name']!r} was trained on ({len(train)} vs {len(expected)}).",
                    field="model",
                    value=model["name"],
                    fix="check that the snapshot blob and the base tokenizer are the ones "
                    "the job used.",
                )
        return train

    def checkpoint_refs(self, model: dict[str, Any], count: int) -> list[CheckpointRef]:
        """The published adapter, then the ``count - 1`` latest training checkpoints."""
        if count < 1:
            raise ValidationError(
                f"--checkpoints {count} is below 1.",
                field="--checkpoints",
                value=count,
                fix="use 1 (the published adapter) or more.",
            )
        refs = [CheckpointRef("published", model["adapter_sha256"])]
        if count == 1:
            return refs
        job = self.jobs.get(model["job"])
        folder = Path(job["work_dir"]) / "checkpoints"
        found = sorted(folder.glob("step-*/adapter.safetensors"), reverse=True)
        if len(found) < count - 1:
            raise ValidationError(
                f"Model {model['name']!r} has {len(found)} training checkpoints on this node; "
                f"--checkpoints {count} needs {count - 1} besides the published adapter.",
                field="--checkpoints",
                value=count,
                fix=f"use --checkpoints {len(found) + 1} or fewer (or retrain with a larger "
                "keep_checkpoints).",
            )
        return refs + [CheckpointRef(p.parent.name, _sha256(p), str(p)) for p in found[: count - 1]]

    def build(
        self,
        model_ref: str | int,
        *,
        method: str = "gradient",
        proj_dim: int = 1024,
        checkpoints: int = 1,
        workers: int = 1,
        damping: float | None = None,
        seed: int = 0,
        progress: bool = True,
        force: bool = False,
    ) -> dict[str, Any]:
        """Build (or resume, or confirm) the model's index; returns its meta.json."""
        if method not in METHODS:
            raise ValidationError(
                f"Attribution method {method!r} is not known.",
                field="--method",
                value=method,
                fix=f"use one of {', '.join(METHODS)}.",
            )
        model = self.models.get(model_ref)
        spec = ModelSpec(model["base"], model["adapter_dir"])
        _, tokenizer = spec.load()
        examples = self.training_examples(model, tokenizer)
        params = BuildParams(
            proj_dim=proj_dim, seed=seed, **({} if damping is None else {"damping": damping})
        )
        job = self.jobs.get(model["job"])
        plan = BuildPlan(
            spec=spec,
            examples=examples,
            checkpoints=self.checkpoint_refs(model, checkpoints),
            params=params,
            identity={
                "model": model["name"],
                "model_id": model["id"],
                "adapter_sha256": model["adapter_sha256"],
                "base": model["base"],
                "base_fingerprint": model["base_fingerprint"],
                "snapshot": f"{job['params']['datanet']}@{job['params']['version']}",
                "snapshot_root": job["params"]["snapshot_root"],
                "max_seq_len": TrainConfig.from_mapping(job["params"]["config"]).max_seq_len,
            },
        )
        meta = build_index(
            plan,
            self.index_dir(model["name"], method),
            workers=workers,
            progress=progress,
            force=force,
        )
        self._attributors.pop(model["name"], None)
        return meta

    # ------------------------------------------------------------------ query

    def index(self, model_ref: str | int) -> tuple[dict[str, Any], GradientIndex]:
        model = self.models.get(model_ref)
        folder = self.index_dir(model["name"])
        if not (folder / META).exists():
            raise NotFoundError(
                f"Model {model['name']!r} has no gradient attribution index.",
                field="model",
                value=model["name"],
                fix=f"build it: `openledger attribution build {model['name']} --method gradient`.",
            )
        index = GradientIndex(folder)
        if index.meta.get("adapter_sha256") != model["adapter_sha256"]:
            raise ConflictError(
                f"The attribution index of {model['name']!r} is stale: it was built for adapter "
                f"{str(index.meta.get('adapter_sha256'))[:16]}…, the model's adapter is "
                f"{model['adapter_sha256'][:16]}….",
                field="index",
                value=str(folder),
                fix=f"rebuild it: `openledger attribution build {model['name']} --method "
                "gradient --force`.",
            )
        return model, index

    def attributor(self, model_ref: str | int) -> GradientAttributor:
        model, index = self.index(model_ref)
        cached = self._attributors.get(model["name"])
        if cached is not None and cached.index.index_hash == index.index_hash:
            return cached
        peft_model, tokenizer = ModelSpec(model["base"], model["adapter_dir"]).load()
        attributor = GradientAttributor(peft_model, tokenizer, index, model_name=model["name"])
        self._attributors[model["name"]] = attributor
        return attributor

    def attribute(
        self, model_ref: str | int, prompt: str, completion: str, *, top: int = 10
    ) -> Attribution:
        if top < 1:
            raise ValidationError(
                f"--top {top} is below 1.",
                field="top",
                value=top,
                fix="ask for at least one example (10 is the default).",
            )
        return self.attributor(model_ref).attribute(prompt, completion, top=top)

    def register(self, model_ref: str | int, signer: Any) -> dict[str, Any]:
        """Post the index hash to ModelRegistry (the model owner signs)."""
        model, index = self.index(model_ref)
        return self.models.set_index_hash(model["name"], index.index_hash, signer=signer)
