"""The attribution quality harness: train on a synthetic datanet with known owners, attribute
canary queries, retrain without each contributor (LOCO) and on random halves (LDS), and
score our method against the baselines in the same run.

Methods compared (all on the same trained adapter and queries):

- ``gradient``: ours — projected LoRA gradients with the (ΦᵀΦ + λI)⁻¹ preconditioner;
- ``grad_dot``: the same index without the preconditioner (plain gradient dot product);
- ``tfidf``: TF-IDF cosine similarity between the query text and each training example;
- ``random``: seeded random scores.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openledger.attribution.gradient.attributor import GradientAttributor, query_tensors
from openledger.attribution.gradient.build import BuildParams, BuildPlan, CheckpointRef, build_index
from openledger.attribution.gradient.index import DEFAULT_DAMPING, GradientIndex
from openledger.attribution.gradient.loading import ModelSpec
from openledger.attribution.quality.metrics import (
    by_contributor,
    canary_hit,
    lds,
    loco_spearman,
    loco_total,
)
from openledger.attribution.quality.synthetic import SyntheticDatanet, make_datanet
from openledger.attribution.types import positive_shares
from openledger.factory.base import load_base
from openledger.factory.config import TrainConfig
from openledger.factory.data import Example, build_examples
from openledger.factory.trainer import Trainer
from openledger.fsutil import write_atomic

METHODS = ("gradient", "grad_dot", "tfidf", "random")
log = logging.getLogger(__name__)


@dataclass
class HarnessConfig:
    """Owners all hold ``facts_per_owner`` facts; owner o is asked ``queries_per_owner +
    o · queries_step`` of them (contributors differ in demand, not in size, so a method
    cannot score on LOCO by crediting big contributors). ``checkpoints``: the ensemble
    size of the ``gradient_ens`` variant (the adapter plus the latest checkpoints)."""

    owners: int = 10
    facts_per_owner: int = 10
    facts_step: int = 0
    noise_records: int = 8
    contributions_per_contributor: int = 2
    queries_per_owner: int | None = 1
    queries_step: int = 1
    query_template: str = "owner"
    loco: bool = True
    lds_subsets: int = 20
    proj_dim: int = 1024
    damping: float = DEFAULT_DAMPING
    checkpoints: int = 3
    seed: int = 0
    train: dict[str, Any] = field(
        default_factory=lambda: {
            "rank": 8,
            "alpha": 16,
            "target_modules": "all-linear",
            "lr": 3e-3,
            "epochs": 8,
            "batch_size": 8,
            "max_seq_len": 64,
            "patience": None,
            "checkpoint_every": 1000,
            "group_by_length": False,
            "max_grad_norm": 1.0,
            "keep_checkpoints": 8,
        }
    )


def _examples(rows: Sequence[dict[str, Any]], tokenizer: Any) -> list[Example]:
    return build_examples(rows, tokenizer, max_seq_len=64, snapshot="synthetic@1")


def train_adapter(
    base_dir: Path, rows: Sequence[dict[str, Any]], work: Path, cfg: HarnessConfig
) -> tuple[Any, Any, list[Example]]:
    """Train a fresh adapter on ``rows``; (peft model, tokenizer, train examples)."""
    model, tokenizer = load_base(base_dir)
    config = TrainConfig.from_mapping({**cfg.train, "seed": cfg.seed})
    examples = _examples(rows, tokenizer)
    trainer = Trainer(model, tokenizer, examples, examples[:8], config, work, progress=False)
    trainer.run(resume=False)
    trainer.model.eval()
    return trainer.model, tokenizer, examples


@torch.no_grad()
def query_logp(model: Any, tokenizer: Any, queries: Sequence[dict[str, Any]]) -> np.ndarray:
    """(Q,) log-likelihood of each query's completion given its prompt."""
    from openledger.attribution.gradient.grads import token_losses

    out = []
    for q in queries:
        ids, labels, _ = query_tensors(tokenizer, q["prompt"], q["completion"], 512)
        out.append(-float(token_losses(model(input_ids=ids).logits, labels).sum()))
    return np.array(out)


def tfidf_scores(
    examples: Sequence[Example], tokenizer: Any, queries: Sequence[dict[str, Any]]
) -> np.ndarray:
    """(Q, N) cosine similarity of TF-IDF word vectors."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [tokenizer.decode(list(e.input_ids), skip_special_tokens=True) for e in examples]
    vec = TfidfVectorizer(lowercase=True, token_pattern=r"(?u)\b\w+\b").fit(docs)
    d = vec.transform(docs)
    q = vec.transform([x["prompt"] + x["completion"] for x in queries])
    return (q @ d.T).toarray()


def _shares(pos: dict[int, float]) -> dict[int, float]:
    """contribution → weight, as the product normalises (positive scores sum to 1)."""
    return {sh.contribution: sh.weight for sh in positive_shares(pos, {})}


def method_scores(
    attributor: GradientAttributor,
    examples: Sequence[Example],
    tokenizer: Any,
    queries: Sequence[dict[str, Any]],
    seed: int,
) -> dict[str, np.ndarray]:
    """method → (Q, N) example scores."""
    out: dict[str, list[np.ndarray]] = {"gradient": [], "grad_dot": []}
    for q in queries:
        qs, _ = attributor.query(q["prompt"], q["completion"])  # one backward for both
        out["gradient"].append(attributor.scores_for(qs))
        out["grad_dot"].append(attributor.scores_for(qs, precondition=False))
    result = {k: np.stack(v) for k, v in out.items()}
    result["tfidf"] = tfidf_scores(examples, tokenizer, queries)
    rng = np.random.default_rng(seed)
    result["random"] = rng.random((len(queries), len(examples)))
    return result


def make(cfg: HarnessConfig) -> SyntheticDatanet:
    return make_datanet(
        owners=cfg.owners,
        facts_per_owner=cfg.facts_per_owner,
        facts_step=cfg.facts_step,
        noise_records=cfg.noise_records,
        contributions_per_contributor=cfg.contributions_per_contributor,
        queries_per_owner=cfg.queries_per_owner,
        queries_step=cfg.queries_step,
        query_template=cfg.query_template,
        seed=cfg.seed,
    )


def _outcome_key(base_dir: Path, data: SyntheticDatanet, cfg: HarnessConfig, what: str) -> str:
    """Retraining outcomes depend on the base, the data, the queries and training only."""
    doc = {
        "base": str(base_dir),
        "rows": data.rows,
        "queries": data.queries,
        "train": cfg.train,
        "seed": cfg.seed,
        "what": what,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _cached(cache: Path | None, key: str, compute: Callable[[], Any]) -> Any:
    """Memoise a retraining outcome on disk (retraining is deterministic in its inputs)."""
    path = None if cache is None else cache / f"{key[:24]}.json"
    if path is not None and path.exists():
        return json.loads(path.read_text())
    value = compute()
    if path is not None:
        write_atomic(path, json.dumps(value))
    return value


def _index(
    base_dir: Path,
    work: Path,
    examples: list[Example],
    cfg: HarnessConfig,
    checkpoints: int,
    name: str,
) -> GradientAttributor:
    found = sorted((work / "full" / "checkpoints").glob("step-*/adapter.safetensors"))
    refs = [CheckpointRef("final", "synthetic")] + [
        CheckpointRef(p.parent.name, p.parent.name, str(p)) for p in found[::-1][: checkpoints - 1]
    ]
    plan = BuildPlan(
        spec=ModelSpec(str(base_dir), str(work / "full" / "adapter")),
        examples=examples,
        checkpoints=refs,
        params=BuildParams(proj_dim=cfg.proj_dim, damping=cfg.damping, seed=cfg.seed),
        identity={"model": "synthetic", "max_seq_len": 64},
    )
    build_index(plan, work / name, progress=False, force=True)
    model, tok = plan.spec.load()
    return GradientAttributor(model, tok, GradientIndex(work / name))


def run(
    base_dir: Path,
    work: Path,
    cfg: HarnessConfig | None = None,
    say: Callable[[str], None] = print,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Run the harness; returns the figures (see benchmarks/bench_attribution_quality.py).
    ``cache``: a folder memoising the retrained models' query log-likelihoods."""
    cfg = cfg or HarnessConfig()
    t0 = time.perf_counter()
    data = make(cfg)
    queries = data.queries
    say(
        f"datanet: {len(data.rows)} records, {len(data.contributor_of)} contributions, "
        f"{len(data.facts) + 1} contributors, {len(queries)} queries"
    )
    full_cfg = copy.deepcopy(cfg)
    if cfg.checkpoints > 1:  # keep intermediate checkpoints for the ensemble
        steps = math.ceil(len(data.rows) / cfg.train["batch_size"]) * cfg.train["epochs"]
        full_cfg.train["checkpoint_every"] = max(1, steps // cfg.checkpoints)
    model, tokenizer, examples = train_adapter(base_dir, data.rows, work / "full", full_cfg)
    full_logp = query_logp(model, tokenizer, queries)
    attributor = _index(base_dir, work, examples, cfg, 1, "index")
    scores = method_scores(attributor, examples, tokenizer, queries, cfg.seed)
    methods = list(METHODS)
    if cfg.checkpoints > 1:
        ens = _index(base_dir, work, examples, cfg, cfg.checkpoints, "index-ens")
        scores["gradient_ens"] = np.stack(
            [ens.example_scores(q["prompt"], q["completion"])[0] for q in queries]
        )
        methods.insert(1, "gradient_ens")
    say(f"trained and attributed in {time.perf_counter() - t0:.0f}s")

    shares = {
        m: [
            by_contributor(_shares(attributor.contribution_scores(s)), data.contributor_of)
            for s in scores[m]
        ]
        for m in methods
    }
    results: dict[str, Any] = {
        "canary_top1": {
            m: float(
                np.mean(
                    [canary_hit(sh, q["owners"]) for sh, q in zip(shares[m], queries, strict=True)]
                )
            )
            for m in methods
        },
        "duplicate_split": _duplicate_split(shares["gradient"], queries),
    }
    if cfg.loco:
        contributors = sorted(set(data.contributor_of.values()))
        increase: list[dict[str, float]] = [{} for _ in queries]
        for name in contributors:
            keep = {c for c, n in data.contributor_of.items() if n != name}

            def retrain(keep: set[int] = keep, name: str = name) -> list[float]:
                m, tok, _ = train_adapter(base_dir, data.subset(keep), work / f"loco-{name}", cfg)
                return query_logp(m, tok, queries).tolist()

            logp = np.array(
                _cached(cache, _outcome_key(base_dir, data, cfg, f"loco:{name}"), retrain)
            )
            for qi in range(len(queries)):
                increase[qi][name] = float(full_logp[qi] - logp[qi])  # loss increase
            say(f"LOCO without {name}: mean loss change {np.mean(full_logp - logp):+.3f}")
        results["loco_spearman"] = {m: loco_total(shares[m], increase) for m in methods}
        results["loco_spearman_per_query"] = {
            m: loco_spearman(shares[m], increase) for m in methods
        }
        own = [inc[q["owner"]] for inc, q in zip(increase, queries, strict=True)]
        other = [
            v
            for inc, q in zip(increase, queries, strict=True)
            for n, v in inc.items()
            if n not in q["owners"]
        ]
        results["loco_loss_increase"] = {
            "owner": float(np.mean(own)),
            "others": float(np.mean(other)),
            "others_sd": float(np.std(other)),
        }
    if cfg.lds_subsets:
        rng = random.Random(cfg.seed)
        contributions = data.contributions
        subsets = [
            set(rng.sample(contributions, len(contributions) // 2)) for _ in range(cfg.lds_subsets)
        ]
        actual = np.zeros((len(subsets), len(queries)))
        for si, subset in enumerate(subsets):

            def retrain(subset: set[int] = subset, si: int = si) -> list[float]:
                m, tok, _ = train_adapter(
                    base_dir, data.subset(subset), work / f"lds-{si:02d}", cfg
                )
                return query_logp(m, tok, queries).tolist()

            key = _outcome_key(base_dir, data, cfg, f"lds:{sorted(subset)}")
            actual[si] = _cached(cache, key, retrain)
            say(f"LDS subset {si + 1}/{len(subsets)} trained")
        tau = {
            m: [attributor.contribution_scores(s, positive_only=False) for s in scores[m]]
            for m in methods
        }
        results["lds"] = {m: lds(tau[m], subsets, actual) for m in methods}
    results["config"] = asdict(cfg)
    results["n_examples"] = len(examples)
    results["n_queries"] = len(queries)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _duplicate_split(
    shares: Sequence[dict[str, float]], queries: Sequence[dict[str, Any]]
) -> dict[str, float]:
    """Mean share of the original owner and of the duplicator on duplicated facts."""
    dup = [(s, q) for s, q in zip(shares, queries, strict=True) if "duplicator" in q["owners"]]
    if not dup:
        return {}
    return {
        "owner": float(np.mean([s.get(q["owner"], 0.0) for s, q in dup])),
        "duplicator": float(np.mean([s.get("duplicator", 0.0) for s, q in dup])),
    }
