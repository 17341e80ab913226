"""Attribution quality on a synthetic datanet with known owners (see
``openledger.attribution.quality``): canary top-1, leave-one-contributor-out Spearman and
LDS, for our gradient method and, in the same run, the baselines (random, TF-IDF, plain
gradient dot product without the preconditioner).

Targets: canary top-1 ≥ 0.9, LOCO Spearman ≥ 0.6, LDS above every baseline.
Writes benchmarks/results/attribution_quality.json. ``--small`` skips LOCO and LDS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, RESULTS, machine, tiny_base  # noqa: E402

from openledger.attribution.quality.harness import HarnessConfig, run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="canary only; writes nothing")
    ap.add_argument("--subsets", type=int, default=20, help="LDS subsets (≥ 20)")
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="retrain every LOCO/LDS model (ignore the memoised outcomes)",
    )
    args = ap.parse_args()
    info = machine()
    base = tiny_base()
    cfg = HarnessConfig(lds_subsets=0 if args.small else args.subsets, loco=not args.small)
    work = CACHE / "attr-quality"
    shutil.rmtree(work, ignore_errors=True)
    cache = None if args.fresh else CACHE / "attr-quality-outcomes"
    before = set(cache.glob("*.json")) if cache and cache.exists() else set()
    r = run(base, work, cfg, cache=cache)
    after = set(cache.glob("*.json")) if cache and cache.exists() else set()
    ours = "gradient"
    doc = {
        "claim": "gradient attribution finds the contributions that made an output likely",
        "canary_top1": r["canary_top1"][ours],
        "loco_spearman": r.get("loco_spearman", {}).get(ours),
        "lds": r.get("lds"),
        "targets": {"canary_top1": 0.9, "loco_spearman": 0.6, "lds": "above every baseline"},
        "by_method": {
            k: r[k]
            for k in ("canary_top1", "loco_spearman", "loco_spearman_per_query", "lds")
            if k in r
        },  # fmt: skip
        "duplicate_split": r["duplicate_split"],
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
        (RESULTS / "attribution_quality.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
