"""Attribution for published models: building their indexes and answering queries.

A model's indexes live in ``<home>/attribution/<model>/<method>/``, a datanet's in
``<home>/attribution/datanets/``. Provenance, gradient and span indexes of a model are
built from the examples its adapter was trained on, token for token as the trainer saw them
(:func:`openledger.attribution.gradient.for_model.training_examples`; records held out for
evaluation are not among them). ``attribute_ids`` dispatches on the model's policy and mixes
the methods' weights (:mod:`openledger.attribution.policy`); ``attribute`` takes text and
tokenises it exactly as training records were tokenised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from openledger.attribution import provenance, rag
from openledger.attribution.engine import (
    MethodAttributor,
    RagAttributor,
    SpanAttributor,
    attribute_by_policy,
    policy_hash,
)
from openledger.attribution.gradient.attributor import GradientAttributor, query_ids
from openledger.attribution.gradient.build import (
    build_index,
)
from openledger.attribution.gradient.for_model import model_plan, training_examples
from openledger.attribution.gradient.index import META, GradientIndex
from openledger.attribution.gradient.loading import ModelSpec
from openledger.attribution.snapshot_indexes import (
    build_spans,
    build_training_spans,
    open_spans,
    tokenizer_id,
)
from openledger.attribution.types import Attribution
from openledger.datanets.snapshots import SnapshotService, parse_ref
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.factory.base import load_tokenizer
from openledger.factory.jobs import JobService
from openledger.factory.publish import ModelService

METHODS = ("provenance", "gradient", "spans", "rag")
RAG_K = 4  # chunks retrieved into the prompt of a model whose policy includes rag


@dataclass
class AttributionService:
    models: ModelService
    jobs: JobService
    snapshots: SnapshotService
    root: Path
    _attributors: dict[str, GradientAttributor] = field(default_factory=dict, repr=False)
    _provenance: dict[str, provenance.ProvenanceAttributor] = field(
        default_factory=dict, repr=False
    )
    _loaded: dict[str, tuple[str, Any, Any]] = field(default_factory=dict, repr=False)

    def index_dir(self, model_name: str, method: str = "gradient") -> Path:
        return self.root / model_name / method

    # ------------------------------------------------------------------ build

    def build(
        self,
        model_ref: str | int,
        *,
        method: str | None = None,
        proj_dim: int = 1024,
        checkpoints: int = 1,
        workers: int = 1,
        damping: float | None = None,
        seed: int = 0,
        progress: bool = True,
        force: bool = False,
        merge: bool = False,
    ) -> dict[str, Any]:
        """Build (or resume, or bring up to date) one of the model's indexes — by default
        every index its policy uses; a summary (``{"model", "indexes": [...]}`` for
        several)."""
        model = self.models.get(model_ref)
        if method is None:
            methods = sorted(model["attribution_policy"])
            summaries = [
                self.build(
                    model["name"],
                    method=m,
                    proj_dim=proj_dim,
                    checkpoints=checkpoints,
                    workers=workers,
                    damping=damping,
                    seed=seed,
                    progress=progress,
                    force=force,
                    merge=merge,
                )
                for m in methods
            ]
            return (
                summaries[0]
                if len(summaries) == 1
                else {"model": model["name"], "indexes": summaries}
            )
        _check_method(method)
        folder = self.index_dir(model["name"], method)
        self._loaded.pop(model["name"], None)
        if method in ("provenance", "spans"):
            return {"model": model["name"], **self._build_examples(model, method, folder, force)}
        if method == "rag":
            rows, ref, root = self._training_snapshot(model)
            summary = self._build_rows(
                method, rows, folder, ref, root, model["base"], merge=merge, force=force
            )
            return {"model": model["name"], **summary}
        plan = model_plan(
            model,
            self.jobs,
            self.snapshots,
            proj_dim=proj_dim,
            checkpoints=checkpoints,
            damping=damping,
            seed=seed,
        )
        meta = build_index(plan, folder, workers=workers, progress=progress, force=force)
        return {
            "model": model["name"],
            "method": "gradient",
            "index_hash": meta["index_hash"],
            "path": str(folder),
            "examples": meta["n_examples"],
            "proj_dim": meta["projection"]["k"],
            "checkpoints": len(meta["checkpoints"]),
            "lambda": [c["lambda"] for c in meta["checkpoints"]],
        }

    def _build_examples(
        self, model: dict[str, Any], method: str, folder: Path, force: bool
    ) -> dict[str, Any]:
        """A provenance or span index of the examples the model's adapter was trained on."""
        tokenizer = load_tokenizer(model["base"])
        params = self.jobs.get(model["job"])["params"]
        identity = {
            "model": model["name"],
            "model_id": model["id"],
            "adapter_sha256": model["adapter_sha256"],
            "base": model["base"],
            "snapshot": f"{params['datanet']}@{params['version']}",
            "snapshot_root": params["snapshot_root"],
        }
        if method == "spans":
            examples = training_examples(model, self.jobs, self.snapshots, tokenizer)
            index = build_training_spans(examples, folder, tokenizer, force=force)
            return _spans_summary(index, folder, index.docs)
        meta_path = folder / provenance.index.META
        if meta_path.exists() and not force:
            meta = json.loads(meta_path.read_text())
            if meta.get("identity") == identity:
                return _provenance_summary(meta, folder)
        examples = training_examples(model, self.jobs, self.snapshots, tokenizer)
        meta = provenance.build(
            examples,
            folder,
            vocab_size=_vocab_size(tokenizer),
            tokenizer_id=tokenizer_id(tokenizer),
            identity=identity,
        )
        self._provenance.pop(model["name"], None)
        return _provenance_summary(meta, folder)

    def build_datanet(
        self,
        ref: str,
        *,
        method: str,
        base: str | None = None,
        merge: bool = False,
        force: bool = False,
    ) -> dict[str, Any]:
        """A span index of a datanet (one more segment per new snapshot; needs the tokenizer
        of ``base``) or a retrieval index of one of its snapshots."""
        name, version = parse_ref(ref)
        snap = self.snapshots.get(name, version)
        rows = self.snapshots.table(name, snap["version"]).to_pylist()
        label = f"{name}@{snap['version']}"
        if method == "spans":
            if not base:
                raise ValidationError(
                    "A span index needs the tokenizer of the models it will trace.",
                    field="base",
                    value=None,
                    fix="name the base model (a local directory or hub id).",
                )
            folder = self.root / "datanets" / name / f"spans-{_slug(base)}"
        elif method == "rag":
            folder = self.root / "datanets" / label / "rag"
        else:
            raise ValidationError(
                f"Datanet indexes are spans or rag, not {method!r}.",
                field="method",
                value=method,
                fix="use the method spans or rag.",
            )
        summary = self._build_rows(
            method, rows, folder, label, snap["root"], base, merge=merge, force=force
        )
        return {"datanet": label, **summary}

    def _training_snapshot(self, model: dict[str, Any]) -> tuple[list[dict], str, str]:
        params = self.jobs.get(model["job"])["params"]
        rows = self.snapshots.table(params["datanet"], params["version"]).to_pylist()
        return rows, f"{params['datanet']}@{params['version']}", params["snapshot_root"]

    def _build_rows(
        self,
        method: str,
        rows: list[dict],
        folder: Path,
        ref: str,
        root: str,
        base: str | None,
        *,
        merge: bool,
        force: bool,
    ) -> dict[str, Any]:
        if method == "spans":
            index, added = build_spans(
                rows, folder, load_tokenizer(str(base)), merge=merge, force=force
            )
            return _spans_summary(index, folder, added)
        if not rows:
            raise ValidationError(
                f"Snapshot {ref} is empty: there is nothing to index.",
                field="snapshot",
                value=ref,
                fix="approve some contributions and take a new snapshot first.",
            )
        if (folder / "meta.json").exists() and not force:
            index = rag.open_index(folder)
            if index.meta.get("root") == root:
                return _rag_summary(index, folder)
        return _rag_summary(
            rag.build_index(rows, folder, snapshot=ref, root=root, overwrite=True), folder
        )

    # ------------------------------------------------------------------ query

    def _missing(self, model: dict[str, Any], method: str) -> NotFoundError:
        return NotFoundError(
            f"Model {model['name']!r} has no {method} attribution index.",
            field="model",
            value=model["name"],
            fix=f"build the model's {method} attribution index first.",
        )

    def index(self, model_ref: str | int) -> tuple[dict[str, Any], GradientIndex]:
        """The model's gradient index, checked against its adapter."""
        model = self.models.get(model_ref)
        folder = self.index_dir(model["name"])
        if not (folder / META).exists():
            raise self._missing(model, "gradient")
        index = GradientIndex(folder)
        if index.meta.get("adapter_sha256") != model["adapter_sha256"]:
            raise ConflictError(
                f"The attribution index of {model['name']!r} is stale: it was built for adapter "
                f"{str(index.meta.get('adapter_sha256'))[:16]}…, the model's adapter is "
                f"{model['adapter_sha256'][:16]}….",
                field="index",
                value=str(folder),
                fix="rebuild its gradient index (replacing the stale one) for the current adapter.",
            )
        return model, index

    def _model(self, model: dict[str, Any]) -> tuple[Any, Any]:
        """The PEFT model and tokenizer, loaded once per adapter."""
        key = model["name"]
        cached = self._loaded.get(key)
        if cached is None or cached[0] != model["adapter_sha256"]:
            # float64: the same query gives the same weights on any machine
            cached = (
                model["adapter_sha256"],
                *ModelSpec(model["base"], model["adapter_dir"]).load(dtype=torch.float64),
            )
            self._loaded[key] = cached
            self._attributors.pop(key, None)
            self._provenance.pop(key, None)
        return cached[1], cached[2]

    def gradient_attributor(self, model_ref: str | int) -> GradientAttributor:
        model, index = self.index(model_ref)
        cached = self._attributors.get(model["name"])
        if cached is not None and cached.index.index_hash == index.index_hash:
            return cached
        peft_model, tokenizer = self._model(model)
        attributor = GradientAttributor(peft_model, tokenizer, index, model_name=model["name"])
        self._attributors[model["name"]] = attributor
        return attributor

    def provenance_index(self, model_ref: str | int) -> tuple[dict[str, Any], Any]:
        """The model's provenance index, checked against its adapter."""
        model = self.models.get(model_ref)
        folder = self.index_dir(model["name"], "provenance")
        if not (folder / provenance.index.META).exists():
            raise self._missing(model, "provenance")
        index = provenance.ProvenanceIndex(folder)
        if index.meta["identity"].get("adapter_sha256") != model["adapter_sha256"]:
            raise ConflictError(
                f"The provenance index of {model['name']!r} is stale: it was built for another "
                "adapter.",
                field="index",
                value=str(folder),
                fix="rebuild its provenance index (replacing the stale one) for the current "
                "adapter.",
            )
        return model, index

    def provenance_attributor(self, model_ref: str | int) -> provenance.ProvenanceAttributor:
        model, index = self.provenance_index(model_ref)
        cached = self._provenance.get(model["name"])
        if cached is not None and cached.index.index_hash == index.index_hash:
            return cached
        peft_model, tokenizer = self._model(model)
        attributor = provenance.ProvenanceAttributor.for_model(
            index, peft_model, tokenizer, model_name=model["name"]
        )
        self._provenance[model["name"]] = attributor
        return attributor

    def attributor(self, model_ref: str | int) -> Attributor:
        """``Attributor.attribute(prompt, completion)`` for one model, by its policy."""
        return Attributor(self, self.models.get(model_ref)["name"])

    def query_ids(self, model_ref: str | int, prompt: str, completion: str) -> tuple:
        """(prompt ids, completion ids) of a query given as text, tokenised exactly as the
        model's training records were."""
        model = self.models.get(model_ref)
        return query_ids(load_tokenizer(model["base"]), prompt, completion)

    def attribute(
        self,
        model_ref: str | int,
        prompt: str,
        completion: str,
        *,
        top: int = 10,
        rag_k: int = RAG_K,
    ) -> Attribution:
        """Attribute a completion given as text (tokenised as training records are; an empty
        completion is a ValidationError), by the model's policy."""
        prompt_ids, completion_ids = self.query_ids(model_ref, prompt, completion)
        return self.attribute_ids(
            model_ref, prompt_ids, completion_ids, top=top, rag_k=rag_k, prompt_text=prompt
        )

    def attribute_ids(
        self,
        model_ref: str | int,
        prompt_ids: list[int],
        completion_ids: list[int],
        *,
        top: int = 10,
        rag_k: int = RAG_K,
        prompt_text: str | None = None,
    ) -> Attribution:
        """Attribute the tokens a model generated (``completion_ids``) after the tokens it
        was given (``prompt_ids``, ``bos`` included), by the model's policy: each method's
        weights, mixed by the policy."""
        if top < 1:
            raise ValidationError(
                f"top {top} is below 1.",
                field="top",
                value=top,
                fix="ask for at least one example (10 is the default).",
            )
        if not completion_ids:
            raise ValidationError(
                "The completion has no tokens: there is nothing to attribute.",
                field="completion",
                value=0,
                fix="pass the tokens the model generated.",
            )
        model = self.models.get(model_ref)
        policy = model["attribution_policy"]
        attributors = {
            m: self._method_attributor(model, m, rag_k=rag_k, prompt_text=prompt_text)
            for m in policy
        }
        return attribute_by_policy(
            policy,
            attributors,
            list(prompt_ids),
            list(completion_ids),
            top=top,
            model=model["name"],
            index_hash=self.policy_hash(model),
        )

    def _method_attributor(
        self, model: dict[str, Any], method: str, *, rag_k: int, prompt_text: str | None
    ) -> MethodAttributor:
        if method == "provenance":
            return self.provenance_attributor(model["name"])
        if method == "gradient":
            return self.gradient_attributor(model["name"])
        folder = self.index_dir(model["name"], method)
        if not (folder / "meta.json").exists():
            raise self._missing(model, method)
        peft_model, tokenizer = self._model(model)
        if method == "spans":
            return SpanAttributor(open_spans(folder, tokenizer), tokenizer, model["name"])
        return RagAttributor(
            rag.open_index(folder),
            peft_model,
            tokenizer,
            k=rag_k,
            prompt_text=prompt_text,
            model_name=model["name"],
        )

    def policy_hash(self, model: dict[str, Any]) -> str:
        """What goes on chain (:func:`openledger.attribution.engine.policy_hash`)."""
        return policy_hash(model["attribution_policy"], self.index_hashes(model))

    def index_hashes(self, model: dict[str, Any]) -> dict[str, str]:
        """method → the hash of the model's index for it (NotFoundError if one is missing)."""
        hashes = {}
        for method in sorted(model["attribution_policy"]):
            if method == "gradient":
                hashes[method] = self.index(model["name"])[1].index_hash
            elif method == "provenance":
                hashes[method] = self.provenance_index(model["name"])[1].index_hash
            else:
                meta_path = self.index_dir(model["name"], method) / "meta.json"
                if not meta_path.exists():
                    raise self._missing(model, method)
                hashes[method] = json.loads(meta_path.read_text())["index_hash"]
        return hashes

    def register(self, model_ref: str | int, signer: Any) -> dict[str, Any]:
        """Post the policy's index hash to ModelRegistry (the model owner signs)."""
        model = self.models.get(model_ref)
        return self.models.set_index_hash(model["name"], self.policy_hash(model), signer=signer)


@dataclass(frozen=True)
class Attributor:
    """The model's attribution, whatever its policy: ``attribute(prompt, completion)``."""

    service: AttributionService
    model: str

    def attribute(self, prompt: str, completion: str, *, top: int = 10) -> Attribution:
        return self.service.attribute(self.model, prompt, completion, top=top)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValidationError(
            f"Attribution method {method!r} is not known.",
            field="method",
            value=method,
            fix=f"use one of {', '.join(METHODS)}.",
        )


def _slug(ref: str) -> str:
    return hashlib.sha256(str(ref).encode()).hexdigest()[:12]


def _spans_summary(index: Any, folder: Path, added: int) -> dict[str, Any]:
    return {
        "method": "spans",
        "index_hash": index.index_hash,
        "path": str(folder),
        "documents": index.docs,
        "tokens": index.tokens,
        "segments": index.segments,
        "added_documents": added,
        "bytes_per_token": round(index.bytes_on_disk() / max(1, index.tokens), 2),
    }


def _provenance_summary(meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    return {
        "method": "provenance",
        "index_hash": meta["index_hash"],
        "path": str(folder),
        "examples": meta["n_examples"],
        "params": meta["params"],
    }


def _vocab_size(tokenizer: Any) -> int:
    return max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)


def _rag_summary(index: Any, folder: Path) -> dict[str, Any]:
    return {
        "method": "rag",
        "index_hash": index.index_hash,
        "path": str(folder),
        "chunks": len(index.chunks),
        "embedding_model": index.embedding_model,
    }
