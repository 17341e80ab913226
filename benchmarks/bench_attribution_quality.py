"""Attribution quality on a datanet of clinics with known ground truth (see
``openledger.attribution.quality``): the default policy of Model Factory models against
the baselines (the preconditioned gradient, the plain gradient dot product, TF-IDF, BM25,
random), in the same run, on the queries users send: training questions, questions and
answers in wordings nobody trained on, and questions about facts nobody contributed.

Figures: top-1 owner on training and unseen-wording queries, LDS against models retrained
on 20 random halves of the contributions, LOCO Pearson (share vs loss increase when a
contributor is left out), the attributed part on negative queries, and what the
paraphrasing sybil earns with and without its copied records.

Writes benchmarks/results/attribution_quality.json. ``--small`` skips LOCO and LDS and
writes nothing; ``--seed`` draws another datanet of clinics.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, RESULTS, machine, tiny_base

from openledger.attribution.quality.harness import HarnessConfig, run
from openledger.factory.publish import DEFAULT_POLICY

TARGETS = {
    "train_top1": ">= 0.97",
    "unseen_top1": ">= 0.9",
    "policy_lds": ">= 0.85 and >= 0.1 above every baseline",
    "loco_pearson": ">= 0.9",
    "negative_attributed": "<= 0.3",
    "sybil_share": "<= sybil_unique_share",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="no LOCO/LDS; writes nothing")
    ap.add_argument("--subsets", type=int, default=20, help="LDS subsets (≥ 20)")
    ap.add_argument("--seed", type=int, default=0, help="which datanet of clinics")
    ap.add_argument("--fresh", action="store_true", help="retrain every LOCO/LDS model")
    ap.add_argument("--out", default=None, help="results file (default: attribution_quality.json)")
    args = ap.parse_args()
    info = machine()
    base = tiny_base()
    cfg = HarnessConfig(
        seed=args.seed, lds_subsets=0 if args.small else args.subsets, loco=not args.small
    )
    work = CACHE / f"attr-quality-{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    cache = None if args.fresh else CACHE / "attr-quality-outcomes"
    before = set(cache.glob("*.json")) if cache and cache.exists() else set()
    r = run(base, work, cfg, cache=cache)
    after = set(cache.glob("*.json")) if cache and cache.exists() else set()
    lds = r.get("lds", {}).get("all", {})
    doc = {
        "claim": "the default attribution policy pays the contributors whose data an answer "
        "came from, on questions in new wordings too, and leaves facts nobody contributed "
        "unattributed",
        "policy": DEFAULT_POLICY,
        "train_top1": r["top1"]["train"]["policy"],
        "unseen_top1": r["top1"]["unseen"]["policy"],
        "policy_lds": lds.get("policy"),
        "baseline_lds": {m: v for m, v in lds.items() if m != "policy"},
        "loco_pearson": r.get("loco_pearson", {}).get("policy"),
        "negative_attributed": r["negative_attributed"],
        "negative_max_share": r["negative_max_share"],
        "sybil_share": r["sybil"]["share"],
        "sybil_unique_share": r["sybil"]["unique_share"],
        "targets": TARGETS,
        "by_method": {
            "train_top1": r["top1"]["train"],
            "unseen_top1": r["top1"]["unseen"],
            "lds": r.get("lds"),
            "loco_pearson": r.get("loco_pearson"),
        },
        "lds_loco_oracle": r.get("lds_loco_oracle"),
        "attributed": r["attributed"],
        "loco_loss_increase": r.get("loco_loss_increase"),
        "n_examples": r["n_examples"],
        "n_queries": r["n_queries"],
        "seconds": r["seconds"],
        "retrained_models": {
            "trained_in_this_run": len(after - before) if cache else "all",
            "loaded_from_memo": (len(after) - len(after - before)) if cache else 0,
            "memo": str(cache) if cache else None,
        },
        "parameters": r["config"],
        "machine": {**info, "load_average_at_end": os.getloadavg()},
    }
    print(json.dumps(doc, indent=1))
    if not args.small:
        RESULTS.mkdir(exist_ok=True)
        out = Path(args.out) if args.out else RESULTS / "attribution_quality.json"
        out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
