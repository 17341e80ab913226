"""The attribution quality harness: train on a datanet of clinics with known ground truth
(:mod:`openledger.attribution.quality.clinics`), attribute the queries users send
(training questions, questions and answers in wordings nobody trained on, questions about
facts nobody contributed), retrain without each contributor (LOCO) and on random halves
(LDS), and score the default policy against the baselines in the same run.

Methods compared (the same trained adapter, the same queries):

- ``policy``: the default attribution policy of Model Factory models
  (:data:`openledger.factory.publish.DEFAULT_POLICY`);
- ``gradient``: projected LoRA gradients with the (ΦᵀΦ + λI)⁻¹ preconditioner;
- ``grad_dot``: the same without the preconditioner (plain gradient dot product);
- ``tfidf`` and ``bm25``: text similarity between the query and each training example;
- ``random``: seeded random scores.

Gradient and text methods normalise their positive scores to 1 (they have no notion of an
unattributed part); the policy says how much it attributes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openledger.attribution.gradient.attributor import GradientAttributor, fit_query, query_ids
from openledger.attribution.gradient.build import BuildParams, BuildPlan, CheckpointRef, build_index
from openledger.attribution.gradient.index import DEFAULT_DAMPING, GradientIndex
from openledger.attribution.gradient.loading import ModelSpec
from openledger.attribution.quality.clinics import ClinicDatanet, make_clinics
from openledger.attribution.quality.metrics import spearman
from openledger.factory.base import load_base
from openledger.factory.config import TrainConfig
from openledger.factory.data import Example, build_examples
from openledger.factory.trainer import Trainer
from openledger.fsutil import write_atomic

BASELINES = ("gradient", "grad_dot", "tfidf", "bm25", "random")
KINDS = ("train", "unseen", "negative")
log = logging.getLogger(__name__)


@dataclass
class HarnessConfig:
    """The world (clinics, diseases each, training queries, noise records, seed), how the
    adapter is trained, and how much retraining the ground truth gets."""

    clinics: int = 6
    diseases_per_clinic: int = 4
    train_queries: int = 24
    noise_records: int = 8
    seed: int = 0
    loco: bool = True
    lds_subsets: int = 20
    proj_dim: int = 1024
    damping: float = DEFAULT_DAMPING
    max_seq_len: int = 64
    train: dict[str, Any] = field(
        default_factory=lambda: {
            "rank": 8,
            "alpha": 16,
            "target_modules": "all-linear",
            "lr": 1e-2,
            "epochs": 60,
            "batch_size": 8,
            "max_seq_len": 64,
            "patience": None,
            "checkpoint_every": 100_000,
            "keep_checkpoints": 1,
            "group_by_length": False,
            "max_grad_norm": 1.0,
        }
    )


# --------------------------------------------------------------------------- training


def examples_of(rows: Sequence[Mapping[str, Any]], tokenizer: Any, cfg: HarnessConfig) -> list:
    return build_examples(rows, tokenizer, max_seq_len=cfg.max_seq_len, snapshot="clinics@1")


def train_adapter(
    base_dir: Path, rows: Sequence[Mapping[str, Any]], work: Path, cfg: HarnessConfig
) -> tuple[Any, Any, list[Example]]:
    """Train a fresh adapter on every row (the Model Factory trainer); (PEFT model,
    tokenizer, examples). The adapter is saved in ``work/adapter``."""
    model, tokenizer = load_base(base_dir)
    config = TrainConfig.from_mapping({**cfg.train, "seed": cfg.seed})
    examples = examples_of(rows, tokenizer, cfg)
    trainer = Trainer(model, tokenizer, examples, examples[:8], config, work, progress=False)
    trainer.run(resume=False)
    trainer.model.eval()
    return trainer.model, tokenizer, examples


@torch.no_grad()
def query_logp(model: Any, tokenizer: Any, queries: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """(Q,) log-likelihood of each query's completion (and its eos) given its prompt,
    tokenised as training records are."""
    from openledger.attribution.gradient.grads import token_losses

    out = []
    for q in queries:
        ids, labels, _ = fit_query(*query_ids(tokenizer, q["prompt"], q["completion"]), 512)
        out.append(-float(token_losses(model(input_ids=ids).logits, labels).sum()))
    return np.array(out)


# --------------------------------------------------------------------------- baselines


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def text_scores(
    examples: Sequence[Example], tokenizer: Any, queries: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """(Q, N) TF-IDF cosine similarity and BM25 (k1 = 1.5, b = 0.75) of each query's
    prompt and completion against each training example's text."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [tokenizer.decode(list(e.input_ids), skip_special_tokens=True) for e in examples]
    texts = [f"{q['prompt']} {q['completion']}" for q in queries]
    vec = TfidfVectorizer(lowercase=True, token_pattern=r"(?u)\b\w+\b").fit(docs)
    tfidf = (vec.transform(texts) @ vec.transform(docs).T).toarray()
    words = [_words(d) for d in docs]
    avg = float(np.mean([len(w) for w in words])) or 1.0
    df = Counter(w for ws in words for w in set(ws))
    n = len(docs)
    bm25 = np.zeros((len(texts), n))
    for qi, text in enumerate(texts):
        terms = set(_words(text))
        for i, ws in enumerate(words):
            tf = Counter(ws)
            for w in terms & tf.keys():
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                bm25[qi, i] += idf * tf[w] * 2.5 / (tf[w] + 1.5 * (0.25 + 0.75 * len(ws) / avg))
    return {"tfidf": tfidf, "bm25": bm25}


def _gradient_attributor(
    base_dir: Path, work: Path, examples: list[Example], cfg: HarnessConfig
) -> GradientAttributor:
    plan = BuildPlan(
        spec=ModelSpec(str(base_dir), str(work / "full" / "adapter")),
        examples=examples,
        checkpoints=[CheckpointRef("final", "clinics")],
        params=BuildParams(proj_dim=cfg.proj_dim, damping=cfg.damping, seed=cfg.seed),
        identity={"model": "clinics", "max_seq_len": cfg.max_seq_len},
    )
    build_index(plan, work / "gradient", progress=False, force=True)
    model, tok = plan.spec.load(dtype=torch.float64)
    return GradientAttributor(model, tok, GradientIndex(work / "gradient"))


# --------------------------------------------------------------------------- the policy


class PolicyScorer:
    """The default policy's attribution of a query, as a Model Factory model would get it
    (token provenance over the training examples, gains from the adapter)."""

    def __init__(self, attributor: Any, tokenizer: Any) -> None:
        self.attributor = attributor
        self.tokenizer = tokenizer

    @classmethod
    def trained(
        cls, base_dir: Path, adapter_dir: Path, examples: Sequence[Example], folder: Path
    ) -> PolicyScorer:
        from openledger.attribution.provenance import ProvenanceAttributor

        model, tok = ModelSpec(str(base_dir), str(adapter_dir)).load(dtype=torch.float64)
        index = _provenance_index(examples, folder, tok)
        return cls(ProvenanceAttributor.for_model(index, model, tok), tok)

    def with_examples(self, examples: Sequence[Example], folder: Path) -> PolicyScorer:
        """The same model's attribution over another set of training examples."""
        from openledger.attribution.provenance import ProvenanceAttributor

        index = _provenance_index(examples, folder, self.tokenizer)
        a = self.attributor
        return PolicyScorer(ProvenanceAttributor(index, a.scores, decode=a.decode), self.tokenizer)

    def weights(self, q: Mapping[str, Any]) -> dict[int, float]:
        """contribution → weight (≥ 0, summing to the attributed part ≤ 1)."""
        prompt, completion = query_ids(self.tokenizer, q["prompt"], q["completion"])
        return self.attributor.attribute_ids(prompt, completion).weights()


def _provenance_index(examples: Sequence[Example], folder: Path, tokenizer: Any) -> Any:
    from openledger.attribution.provenance import ProvenanceIndex, build
    from openledger.attribution.snapshot_indexes import tokenizer_id

    build(
        examples,
        folder,
        vocab_size=len(tokenizer),
        tokenizer_id=tokenizer_id(tokenizer),
        identity={"harness": "clinics"},
    )
    return ProvenanceIndex(folder)


# --------------------------------------------------------------------------- memo


def _outcome_key(base_dir: Path, data: ClinicDatanet, cfg: HarnessConfig, what: str) -> str:
    """Retraining outcomes depend on the base, the data, the queries and training only."""
    doc = {
        "base": str(base_dir),
        "rows": data.rows,
        "queries": data.queries,
        "train": cfg.train,
        "seed": cfg.seed,
        "max_seq_len": cfg.max_seq_len,
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


# --------------------------------------------------------------------------- metrics


def contributor_shares(
    weights: Mapping[int, float], contributor_of: Mapping[int, str]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for c, w in weights.items():
        out[contributor_of[c]] = out.get(contributor_of[c], 0.0) + w
    return out


def top_is(shares: Mapping[str, float], name: str | None) -> bool:
    """``name`` holds the largest share, alone."""
    if not shares or name is None:
        return False
    best = max(shares.values())
    top = [n for n, s in shares.items() if s == best]
    return best > 0 and top == [name]


def normalised(scores: np.ndarray, contributions: Sequence[int], of: np.ndarray) -> list:
    """(Q, N) example scores → per query {contribution: weight}, positive sums normalised
    to 1 (what a method without an unattributed part pays)."""
    out = []
    for row in scores:
        sums = {c: float(np.maximum(row[of == c], 0).sum()) for c in contributions}
        total = math.fsum(sums.values())
        out.append({c: s / total for c, s in sums.items() if s > 0} if total > 0 else {})
    return out


def signed(scores: np.ndarray, contributions: Sequence[int], of: np.ndarray) -> list:
    """(Q, N) example scores → per query {contribution: summed signed score} (for LDS)."""
    return [{c: float(row[of == c].sum()) for c in contributions} for row in scores]


def lds(
    tau: Sequence[Mapping[int, float]], subsets: Sequence[set[int]], actual: np.ndarray
) -> float:
    """Mean over queries of Spearman(Σ_{c∈S} τ(q, c), log-likelihood under the model
    retrained on S) over the subsets S."""
    values = []
    for q, scores in enumerate(tau):
        predicted = [sum(scores.get(c, 0.0) for c in s) for s in subsets]
        values.append(spearman(predicted, actual[:, q]))
    return float(np.mean(values)) if values else 0.0


# --------------------------------------------------------------------------- run


def run(
    base_dir: Path,
    work: Path,
    cfg: HarnessConfig | None = None,
    say: Callable[[str], None] = print,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Run the harness; the figures (see benchmarks/bench_attribution_quality.py).
    ``cache``: a folder memoising the retrained models' query log-likelihoods."""
    cfg = cfg or HarnessConfig()
    t0 = time.perf_counter()
    data = make_clinics(
        clinics=cfg.clinics,
        diseases_per_clinic=cfg.diseases_per_clinic,
        train_queries=cfg.train_queries,
        noise_records=cfg.noise_records,
        seed=cfg.seed,
    )
    queries = data.queries
    kinds = [q["kind"] for q in queries]
    contributions = data.contributions
    say(
        f"datanet: {len(data.rows)} records, {len(contributions)} contributions, "
        f"{len(set(data.contributor_of.values()))} contributors; queries: "
        + ", ".join(f"{kinds.count(k)} {k}" for k in KINDS)
    )
    model, tokenizer, examples = train_adapter(base_dir, data.rows, work / "full", cfg)
    full_logp = query_logp(model, tokenizer, queries)
    of = np.array([e.contribution for e in examples])

    policy = PolicyScorer.trained(
        base_dir, work / "full" / "adapter", examples, work / "provenance"
    )
    weights: dict[str, list[dict[int, float]]] = {"policy": [policy.weights(q) for q in queries]}
    tau: dict[str, list[dict[int, float]]] = {"policy": weights["policy"]}
    grad = _gradient_attributor(base_dir, work, examples, cfg)
    scores: dict[str, list[np.ndarray]] = {"gradient": [], "grad_dot": []}
    for q in queries:
        ids, labels, _ = fit_query(*query_ids(tokenizer, q["prompt"], q["completion"]), 512)
        qs = grad.query_gradients(ids, labels)  # one backward for both
        scores["gradient"].append(grad.scores_for(qs))
        scores["grad_dot"].append(grad.scores_for(qs, precondition=False))
    matrices = {k: np.stack(v) for k, v in scores.items()}
    matrices |= text_scores(examples, tokenizer, queries)
    matrices["random"] = np.random.default_rng(cfg.seed).random((len(queries), len(examples)))
    for m in BASELINES:
        weights[m] = normalised(matrices[m], contributions, of)
        tau[m] = signed(matrices[m], contributions, of)
    methods = ["policy", *BASELINES]
    say(f"trained and attributed in {time.perf_counter() - t0:.0f}s")

    shares = {m: [contributor_shares(w, data.contributor_of) for w in weights[m]] for m in methods}
    results: dict[str, Any] = {"top1": {}, "attributed": {}}
    for kind in ("train", "unseen"):
        idx = [i for i, k in enumerate(kinds) if k == kind]
        results["top1"][kind] = {
            m: float(np.mean([top_is(shares[m][i], queries[i]["owner"]) for i in idx]))
            for m in methods
        }
    neg = [i for i, k in enumerate(kinds) if k == "negative"]
    results["negative_attributed"] = float(
        np.mean([sum(weights["policy"][i].values()) for i in neg])
    )
    results["negative_max_share"] = float(
        max((max(shares["policy"][i].values(), default=0.0) for i in neg), default=0.0)
    )
    results["attributed"] = {
        kind: float(
            np.mean([sum(weights["policy"][i].values()) for i, k in enumerate(kinds) if k == kind])
        )
        for kind in KINDS
    }
    results["sybil"] = _sybil(data, examples, policy, work, weights["policy"])

    positive = [i for i, k in enumerate(kinds) if k != "negative"]
    if cfg.loco:
        contributors = sorted(set(data.contributor_of.values()))
        increase: dict[str, np.ndarray] = {}
        for name in contributors:
            keep = {c for c, n in data.contributor_of.items() if n != name}

            def retrain(keep: set[int] = keep, name: str = name) -> list[float]:
                m, tok, _ = train_adapter(base_dir, data.subset(keep), work / f"loco-{name}", cfg)
                return query_logp(m, tok, queries).tolist()

            logp = np.array(
                _cached(cache, _outcome_key(base_dir, data, cfg, f"loco:{name}"), retrain)
            )
            increase[name] = full_logp - logp  # loss increase without the contributor
            say(f"LOCO without {name}: mean loss change {np.mean(increase[name]):+.3f}")
        actual = [float(increase[n][positive].sum()) for n in contributors]
        results["loco_pearson"] = {}
        for m in methods:
            predicted = [sum(shares[m][i].get(n, 0.0) for i in positive) for n in contributors]
            results["loco_pearson"][m] = float(np.corrcoef(predicted, actual)[0, 1])
        results["loco_loss_increase"] = {
            n: round(float(increase[n][positive].mean()), 3) for n in contributors
        }
    if cfg.lds_subsets:
        rng = random.Random(cfg.seed)
        subsets = [
            set(rng.sample(contributions, len(contributions) // 2)) for _ in range(cfg.lds_subsets)
        ]
        outcome = np.zeros((len(subsets), len(queries)))
        for si, subset in enumerate(subsets):

            def retrain(subset: set[int] = subset, si: int = si) -> list[float]:
                m, tok, _ = train_adapter(
                    base_dir, data.subset(subset), work / f"lds-{si:02d}", cfg
                )
                return query_logp(m, tok, queries).tolist()

            key = _outcome_key(base_dir, data, cfg, f"lds:{sorted(subset)}")
            outcome[si] = _cached(cache, key, retrain)
            say(f"LDS subset {si + 1}/{len(subsets)} trained")
        results["lds"] = {}
        for scope, idx in (
            ("all", positive),
            *((k, [i for i in positive if kinds[i] == k]) for k in ("train", "unseen")),
        ):
            results["lds"][scope] = {
                m: lds([tau[m][i] for i in idx], subsets, outcome[:, idx]) for m in methods
            }
        if cfg.loco:  # what a perfect leave-one-out predictor would score: the noise ceiling
            oracle = _loco_oracle(data, examples, increase, positive)
            results["lds_loco_oracle"] = lds(oracle, subsets, outcome[:, positive])
    results["config"] = asdict(cfg)
    results["n_examples"] = len(examples)
    results["n_queries"] = {k: kinds.count(k) for k in KINDS}
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _sybil(
    data: ClinicDatanet,
    examples: list[Example],
    policy: PolicyScorer,
    work: Path,
    weights: Sequence[Mapping[int, float]],
) -> dict[str, float]:
    """What the paraphrasing sybil earns (its mean share over all queries), and what it
    earns when its records that restate another clinic's facts are taken out of the index:
    copying must not raise its payout."""
    mine = {c for c, n in data.contributor_of.items() if n == "sybil"}
    unique = [e for e in examples if e.record not in data.copied_records]
    alone = policy.with_examples(unique, work / "provenance-unique")
    without = [alone.weights(q) for q in data.queries]
    return {
        "share": float(np.mean([sum(w.get(c, 0.0) for c in mine) for w in weights])),
        "unique_share": float(np.mean([sum(w.get(c, 0.0) for c in mine) for w in without])),
        "copied_records": len(data.copied_records),
    }


def _loco_oracle(
    data: ClinicDatanet,
    examples: list[Example],
    increase: Mapping[str, np.ndarray],
    positive: Sequence[int],
) -> list[dict[int, float]]:
    """τ(q, c) from the measured leave-one-contributor-out loss increases, split over the
    contributor's contributions by their number of examples."""
    size = Counter(e.contribution for e in examples)
    out = []
    for qi in positive:
        row = {}
        for c, name in data.contributor_of.items():
            mine = [x for x, n in data.contributor_of.items() if n == name]
            row[c] = float(increase[name][qi]) * size[c] / max(1, sum(size[x] for x in mine))
        out.append(row)
    return out
