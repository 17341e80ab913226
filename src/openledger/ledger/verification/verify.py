"""Checking a receipt's attribution from public artefacts: the operator's word is not needed.

A verifier holds a receipt and, from a node's API or a node home, the public artefacts of
its model: the adapter (sha256 on chain), the snapshot it was trained on (Merkle root on
chain), the model card (sha256 on chain, with the hyperparameters and the attribution
policy), each index's parameters, and — for the payer or the operator — the tokens that
were attributed (sha256 in the receipt). It then

1. checks the receipt's signature chain to the operator's signed head;
2. checks every artefact against the chain: adapter hash, snapshot root, card hash;
3. rebuilds the training examples (tokenised as the trainer did, the eval split held out)
   and every index of the policy from them, and compares the policy's index hash with the
   one registered in ModelRegistry (and the receipt's);
4. recomputes the attribution of the tokens and compares the weights, contribution by
   contribution, in the parts per billion the receipt carries.

Nothing is written outside a temporary folder. docs/attribution-verify.md states the steps
precisely enough to reimplement them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openledger.attribution.gradient.index import sha256_file
from openledger.errors import ConflictError, ValidationError

__all__ = [
    "Check",
    "ModelArtefacts",
    "OnChain",
    "Source",
    "Verification",
    "Verifier",
    "sha256_file",
    "verify_receipt",
]

ADAPTER_FILE = "adapter_model.safetensors"
CARD_FILE = "openledger-card.json"
LINEAGE_FILE = "training_examples.json"
ZERO32 = "0x" + "00" * 32


@dataclass(frozen=True)
class ModelArtefacts:
    """A model's public artefacts, on this machine."""

    model_id: int
    name: str
    base: str  # a local directory or a hub id
    adapter_dir: Path
    snapshot_rows: list[dict[str, Any]]
    index_metas: Mapping[str, dict[str, Any]]  # method → the published meta.json


@dataclass(frozen=True)
class OnChain:
    """What ModelRegistry says of a model."""

    adapter_sha256: str
    snapshot_roots: list[str]
    index_hash: str
    metadata_uri: str


class Source(Protocol):
    """Where a verifier gets a receipt and its model's artefacts (a node home or a URL)."""

    def receipt(self, ref: str) -> dict[str, Any]: ...
    def operator(self) -> str: ...
    def artefacts(self, body: Mapping[str, Any], workdir: Path) -> ModelArtefacts: ...
    def query(self, digest: str) -> tuple[list[int], list[int]] | None: ...
    def on_chain(self, model_id: int) -> OnChain: ...


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    receipt: str
    model: str
    method: str
    checks: list[Check] = field(default_factory=list)
    weights: dict[int, tuple[int, int]] = field(default_factory=dict)  # receipt, recomputed
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def mismatches(self) -> list[tuple[int, int, int]]:
        """(contribution, receipt ppb, recomputed ppb) where they differ."""
        return [(c, a, b) for c, (a, b) in sorted(self.weights.items()) if a != b]

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt,
            "model": self.model,
            "method": self.method,
            "ok": self.ok,
            "checks": [c.__dict__ for c in self.checks],
            "weights_ppb": {
                str(c): {"receipt": a, "recomputed": b}
                for c, (a, b) in sorted(self.weights.items())
            },
            "mismatches": [
                {"contribution": c, "receipt_ppb": a, "recomputed_ppb": b}
                for c, a, b in self.mismatches
            ],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _ModelCheck:
    """What one model's artefacts proved (checked once, shared by its receipts)."""

    checks: list[Check]
    rebuilt: str | None = None  # the policy's index hash, rebuilt
    registered: str | None = None
    policy: Mapping[str, float] = field(default_factory=dict)
    attributors: dict[str, Any] = field(default_factory=dict)
    name: str = ""


class Verifier:
    """Verifies receipts against one source; artefacts are fetched, checked and indexes
    rebuilt once per model (in a temporary folder removed by :meth:`close`)."""

    def __init__(self, source: Source, workdir: Path | None = None) -> None:
        self.source = source
        self._own = workdir is None
        self.work = Path(tempfile.mkdtemp(prefix="openledger-verify-")) if self._own else workdir
        self._models: dict[tuple[str, str], _ModelCheck] = {}

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            shutil.rmtree(self.work, ignore_errors=True)

    def receipt(self, ref: str) -> Verification:
        """Recompute receipt ``ref``'s attribution from public artefacts."""
        from openledger.ledger.receipts.canonical import check_served

        t0 = time.perf_counter()
        doc = self.source.receipt(ref)
        body = doc["receipt"]
        summary = body.get("attribution") or {}
        method = str(summary.get("method", "none"))
        v = Verification(str(doc.get("id") or ref), str(body["model"]["name"]), method)
        problem = check_served(doc, self.source.operator())
        v.check("receipt", not problem, problem or "signed by the operator, chained to its head")
        if method == "none":
            v.check(
                "attribution",
                True,
                "the receipt attributes nothing: the contributors' part "
                "was paid pro rata to approved records",
            )
        else:
            self._attribution(body, summary, v)
        v.seconds = time.perf_counter() - t0
        return v

    def _model(self, body: Mapping[str, Any]) -> _ModelCheck:
        key = (str(body["model"]["name"]), str(body["model"]["adapter_sha256"]))
        if key not in self._models:
            folder = self.work / f"model-{len(self._models)}"
            folder.mkdir(parents=True, exist_ok=True)
            self._models[key] = _check_model(self.source, body, folder)
        return self._models[key]

    def _attribution(
        self, body: Mapping[str, Any], summary: Mapping[str, Any], v: Verification
    ) -> None:
        from openledger.attribution.engine import attribute_by_policy
        from openledger.attribution.types import query_hash
        from openledger.ledger.pricing.fees import weights_ppb

        m = self._model(body)
        v.checks.extend(m.checks)
        if m.rebuilt is None:
            return
        named = summary.get("index_hash")
        if m.registered is None:
            v.check(
                "index",
                m.rebuilt == named,
                f"rebuilt {m.rebuilt[:18]}…; the model's index hash is not registered on "
                f"chain, the receipt names {str(named)[:18]}…",
            )
        else:
            differs = (
                ""
                if m.rebuilt == m.registered
                else (
                    ": the index registered was built with other parameters or other data than "
                    "the public ones"
                )
            )
            v.check(
                "index",
                m.rebuilt == m.registered == named,
                f"rebuilt {m.rebuilt[:18]}… (ModelRegistry: {m.registered[:18]}…, receipt: "
                f"{str(named)[:18]}…){differs}",
            )
        digest = summary.get("query_hash")
        tokens = self.source.query(digest) if digest else None
        found = tokens is not None and query_hash(*tokens) == digest
        if not v.check(
            "query",
            found,
            "the attributed tokens hash to the receipt's query_hash"
            if found
            else "the tokens attributed are not available (only the payer and the operator may "
            "read them)",
        ):
            return
        prompt, completion = tokens
        result = attribute_by_policy(
            m.policy, m.attributors, prompt, completion, model=m.name, index_hash=m.rebuilt
        )
        recomputed = weights_ppb(result.weights())
        claimed = {int(s["contribution"]): int(s["weight_ppb"]) for s in summary.get("shares", [])}
        for c in sorted(set(recomputed) | set(claimed)):
            v.weights[c] = (claimed.get(c, 0), recomputed.get(c, 0))
        bad = v.mismatches
        v.check(
            "weights",
            not bad,
            f"{len(claimed)} contributions, every weight equal to the part per billion"
            if not bad
            else "; ".join(
                f"contribution {c}: receipt {a} ppb, recomputed {b} ppb" for c, a, b in bad
            ),
        )


def verify_receipt(source: Source, ref: str, *, workdir: Path | None = None) -> Verification:
    """Recompute receipt ``ref``'s attribution from public artefacts (see the module doc)."""
    with Verifier(source, workdir) as verifier:
        return verifier.receipt(ref)


def _check_model(source: Source, body: Mapping[str, Any], work: Path) -> _ModelCheck:
    """Fetch and check a model's artefacts against the chain; rebuild its indexes."""
    import torch

    from openledger.attribution.engine import policy_hash
    from openledger.attribution.gradient.loading import ModelSpec
    from openledger.chain.merkle import SimpleMerkleTree
    from openledger.factory.base import load_tokenizer

    checks = Verification("", "", "")
    chain = source.on_chain(int(body["model"]["id"]))
    art = source.artefacts(body, work)
    adapter_sha = sha256_file(art.adapter_dir / ADAPTER_FILE)
    on_chain = chain.adapter_sha256.removeprefix("0x")
    checks.check(
        "adapter",
        adapter_sha == on_chain == str(body["model"]["adapter_sha256"]),
        f"sha256 {adapter_sha[:16]}… (ModelRegistry: {on_chain[:16]}…)",
    )
    card = json.loads((art.adapter_dir / CARD_FILE).read_text())
    card_sha = hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()
    checks.check(
        "card",
        chain.metadata_uri == f"sha256:{card_sha}",
        f"sha256:{card_sha[:16]}… (ModelRegistry: {chain.metadata_uri[:23]}…)",
    )
    tree = SimpleMerkleTree.from_leaves([bytes.fromhex(r["sha256"]) for r in art.snapshot_rows])
    root = "0x" + bytes(tree.root).hex()
    checks.check(
        "snapshot",
        root in chain.snapshot_roots,
        f"Merkle root {root[:18]}… of {len(art.snapshot_rows)} records (ModelRegistry: "
        f"{', '.join(r[:18] + '…' for r in chain.snapshot_roots)})",
    )
    out = _ModelCheck(checks=checks.checks)
    if not checks.ok:
        return out
    tokenizer = load_tokenizer(art.base)
    train = training_examples(card, art.snapshot_rows, tokenizer)
    lineage = json.loads((art.adapter_dir / LINEAGE_FILE).read_text())["train"]
    if not checks.check(
        "examples",
        [e.example_id for e in train] == [x["example_id"] for x in lineage],
        f"{len(train)} training examples rebuilt from the snapshot, as the adapter's lineage "
        "lists them",
    ):
        return out
    out.policy = card["attribution_policy"]
    out.name = art.name
    indexes, hashes = rebuild_indexes(out.policy, art, train, tokenizer, work / "indexes")
    out.rebuilt = policy_hash(out.policy, hashes)
    out.registered = None if chain.index_hash == ZERO32 else chain.index_hash
    model, tok = ModelSpec(art.base, str(art.adapter_dir)).load(dtype=torch.float64)
    out.attributors = method_attributors(out.policy, indexes, model, tok, art.name)
    return out


def training_examples(card: Mapping[str, Any], rows: list[dict[str, Any]], tokenizer: Any) -> list:
    """The examples the adapter was trained on, from the card's hyperparameters."""
    from openledger.factory.config import TrainConfig
    from openledger.factory.data import build_examples, split_eval

    config = TrainConfig.from_mapping(card["hyperparameters"])
    data = card["data"][0]
    ref = f"{data['datanet']}@{data['version']}"
    examples = build_examples(rows, tokenizer, max_seq_len=config.max_seq_len, snapshot=ref)
    return split_eval(examples, config.eval_split, config.seed)[0]


def rebuild_indexes(
    policy: Mapping[str, float],
    art: ModelArtefacts,
    train: list,
    tokenizer: Any,
    folder: Path,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every index of the policy rebuilt from the examples and the published parameters;
    (method → opened index, method → index hash)."""
    from openledger.attribution import provenance
    from openledger.attribution.snapshot_indexes import build_training_spans, tokenizer_id

    indexes: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    for method in sorted(policy):
        meta = art.index_metas.get(method)
        if meta is None:
            raise ConflictError(
                f"Model {art.name!r} publishes no {method} index parameters.",
                field="index",
                value=method,
                fix=f"ask the model's owner to build and publish its {method} index on the node.",
            )
        target = folder / method
        if method == "provenance":
            provenance.build(
                train,
                target,
                vocab_size=_vocab_size(tokenizer),
                tokenizer_id=tokenizer_id(tokenizer),
                identity=meta["identity"],
                params=provenance.ProvenanceParams(**meta["params"]),
            )
            indexes[method] = provenance.ProvenanceIndex(target)
        elif method == "spans":
            indexes[method] = build_training_spans(train, target, tokenizer, force=True)
        elif method == "gradient":
            indexes[method] = _rebuild_gradient(meta, art, train, target)
        else:
            raise ValidationError(
                f"A {method} attribution cannot be recomputed by `verify` yet: its index is "
                "built from float embeddings this verifier does not reproduce bit for bit.",
                field="method",
                value=method,
                fix="verify models whose policy uses provenance, gradient or spans.",
            )
        hashes[method] = str(indexes[method].index_hash)
    return indexes, hashes


def _rebuild_gradient(
    meta: Mapping[str, Any], art: ModelArtefacts, train: list, target: Path
) -> Any:
    from openledger.attribution.gradient.build import (
        BuildParams,
        BuildPlan,
        CheckpointRef,
        build_index,
    )
    from openledger.attribution.gradient.index import GradientIndex
    from openledger.attribution.gradient.loading import ModelSpec

    checkpoints = meta["checkpoints"]
    if len(checkpoints) != 1 or checkpoints[0].get("path") is not None:
        raise ValidationError(
            f"The gradient index of {art.name!r} ensembles {len(checkpoints)} training "
            "checkpoints, which are not public artefacts: it cannot be rebuilt by others.",
            field="checkpoints",
            value=len(checkpoints),
            fix="build it from the published adapter alone (1 checkpoint).",
        )
    identity_keys = (
        "model",
        "model_id",
        "adapter_sha256",
        "base",
        "base_fingerprint",
        "snapshot",
        "snapshot_root",
        "max_seq_len",
    )
    plan = BuildPlan(
        spec=ModelSpec(art.base, str(art.adapter_dir)),
        examples=train,
        checkpoints=[CheckpointRef(checkpoints[0]["name"], checkpoints[0]["sha256"])],
        params=BuildParams(**meta["params"]),
        identity={k: meta[k] for k in identity_keys if k in meta},
    )
    build_index(plan, target, progress=False, force=True)
    return GradientIndex(target)


def method_attributors(
    policy: Mapping[str, float],
    indexes: Mapping[str, Any],
    model: Any,
    tokenizer: Any,
    name: str,
) -> dict[str, Any]:
    from openledger.attribution.engine import SpanAttributor
    from openledger.attribution.gradient.attributor import GradientAttributor
    from openledger.attribution.provenance import ProvenanceAttributor

    out: dict[str, Any] = {}
    for method in policy:
        index = indexes[method]
        if method == "provenance":
            out[method] = ProvenanceAttributor.for_model(index, model, tokenizer, model_name=name)
        elif method == "gradient":
            out[method] = GradientAttributor(model, tokenizer, index, model_name=name)
        else:
            out[method] = SpanAttributor(index, tokenizer, name)
    return out


def _vocab_size(tokenizer: Any) -> int:
    return max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
