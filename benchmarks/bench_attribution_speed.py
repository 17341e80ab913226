"""Attribution speed: is attributing a completion cheaper than generating it?

Claim: ``query_over_generation`` ≤ 1.0 for the default policy (token provenance: two
float64 forward passes for the gains, suffix-array lookups, exact credit) — its latency
over the time the same model takes to generate the same 64-token completion (greedy, KV
cache, the adapter unmerged as served), with ``n_examples`` = 100,000 indexed examples.
Beside it, the gradient method's (one float64 forward + backward pass on prompt +
completion, projection, preconditioning, one matrix-vector product against every indexed
example, k = 1024): ``gradient_query_over_generation``.

Also measured, side by side on the same examples: the index build rate with the fused
per-example gradients (our default) and with ``torch.func`` vmap (chunk 16) — the choice
the issue asks to make by measurement — and bytes on disk per indexed example.

Writes benchmarks/results/attribution_speed.json. ``--small`` runs 5,000 examples.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, RESULTS, machine, tiny_base

from openledger.attribution import provenance
from openledger.attribution.gradient.attributor import GradientAttributor
from openledger.attribution.gradient.build import (
    BuildParams,
    BuildPlan,
    CheckpointRef,
    build_index,
    shard_features,
)
from openledger.attribution.gradient.grads import module_shapes
from openledger.attribution.gradient.index import GradientIndex
from openledger.attribution.gradient.loading import ModelSpec
from openledger.attribution.gradient.projection import Projection
from openledger.attribution.snapshot_indexes import tokenizer_id
from openledger.factory.base import load_base
from openledger.factory.config import TrainConfig
from openledger.factory.data import build_examples
from openledger.factory.trainer import Trainer

SYL = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def rows(n: int, seed: int = 0) -> list[dict]:
    """Prompt/completion facts with invented words (about 30-50 tokens each)."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice(SYL) for _ in range(rng.randint(2, 3))).title()

    out = []
    for i in range(n):
        out.append(
            {
                "record": i + 1,
                "sha256": f"{i + 1:064x}",
                "kind": "prompt_completion",
                "text": None,
                "messages": None,
                "prompt": f"What is the {rng.choice(['capital', 'river', 'emblem'])} of {word()}?",
                "completion": " " + " ".join(word() for _ in range(rng.randint(4, 9))) + ".",
                "contribution": 1 + i % 500,
                "contributor": f"0x{1 + i % 97:040x}",
            }
        )
    return out


def adapter(base: Path, work: Path) -> Path:
    """A LoRA adapter (the factory's defaults: rank 8 on q_proj, v_proj) trained briefly."""
    if (work / "adapter" / "adapter_config.json").exists():
        return work / "adapter"
    model, tok = load_base(base)
    examples = build_examples(rows(512, seed=1), tok, max_seq_len=128, snapshot="bench@1")
    cfg = TrainConfig(epochs=1, batch_size=16, max_seq_len=128, checkpoint_every=10_000)
    Trainer(model, tok, examples[:480], examples[480:], cfg, work, progress=False).run(False)
    return work / "adapter"


def p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="5,000 examples; writes nothing")
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument("--proj-dim", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()
    n = 5_000 if args.small else args.examples
    info = machine()
    base = tiny_base()
    work = CACHE / "attr-speed"
    ad = adapter(base, work / "train")
    spec = ModelSpec(str(base), str(ad))
    model, tok = spec.load()
    examples = build_examples(rows(n), tok, max_seq_len=128, snapshot="bench@1")
    params = BuildParams(proj_dim=args.proj_dim, batch_size=32, shard_size=8192)

    # fused vs vmap on the same 512 examples (the choice made by measurement)
    proj = Projection.for_modules(module_shapes(model), args.proj_dim, 0)
    sample = examples[:512]
    rates = {}
    for method in ("fused", "vmap"):
        p_ = BuildParams(proj_dim=args.proj_dim, batch_size=32, grads=method)
        shard_features(model, tok, sample[:32], proj, p_)  # warm-up
        t = time.perf_counter()
        shard_features(model, tok, sample, proj, p_)
        rates[method] = len(sample) / (time.perf_counter() - t)
        print(f"{method}: {rates[method]:,.0f} examples/s")

    root = work / "index"
    shutil.rmtree(root, ignore_errors=True)
    plan = BuildPlan(
        spec,
        examples,
        [CheckpointRef("published", "bench")],
        params,
        identity={"model": "bench", "max_seq_len": 128},
    )
    t = time.perf_counter()
    meta = build_index(plan, root, progress=True, workers=2)  # one process per core
    build_s = time.perf_counter() - t
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    index = GradientIndex(root)
    model64, _ = spec.load(dtype=torch.float64)
    attributor = GradientAttributor(model64, tok, index, model_name="bench")
    t = time.perf_counter()
    prov_meta = provenance.build(
        examples,
        work / "provenance",
        vocab_size=len(tok),
        tokenizer_id=tokenizer_id(tok),
        identity={"model": "bench"},
    )
    prov_build_s = time.perf_counter() - t
    prov = provenance.ProvenanceAttributor.for_model(
        provenance.ProvenanceIndex(work / "provenance"), model64, tok, model_name="bench"
    )

    rng = random.Random(7)
    gen_times, attr_times, prov_times = [], [], []
    for i in range(args.queries):
        prompt = f"What is the capital of {rng.choice(SYL).title()}{rng.choice(SYL)}?"
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            t = time.perf_counter()
            out = model.generate(
                ids,
                max_new_tokens=64,
                min_new_tokens=64,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            gen = time.perf_counter() - t
        completion = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        t = time.perf_counter()
        result = attributor.attribute(prompt, completion, top=10)
        att = time.perf_counter() - t
        prompt_ids, completion_ids = ids[0].tolist(), out[0, ids.shape[1] :].tolist()
        t = time.perf_counter()
        prov.attribute_ids(prompt_ids, completion_ids, top=10)
        pro = time.perf_counter() - t
        if i:  # the first of each is a warm-up
            gen_times.append(gen)
            attr_times.append(att)
            prov_times.append(pro)
        assert result.shares, "a completion with no positive influence at all"
    gen_p50, att_p50 = statistics.median(gen_times), statistics.median(attr_times)
    prov_p50 = statistics.median(prov_times)
    doc = {
        "claim": "attributing a 64-token completion (the default policy, token provenance) "
        "costs less than generating it",
        "query_over_generation": round(prov_p50 / gen_p50, 3),
        "target_query_over_generation": 1.0,
        "default_policy": "provenance",
        "provenance_p50_ms": round(prov_p50 * 1000, 1),
        "provenance_p95_ms": round(p(prov_times, 0.95) * 1000, 1),
        "provenance_build_seconds": round(prov_build_s, 1),
        "gradient_query_over_generation": round(att_p50 / gen_p50, 3),
        "n_examples": len(examples),
        "attribution_p50_ms": round(att_p50 * 1000, 1),
        "attribution_p95_ms": round(p(attr_times, 0.95) * 1000, 1),
        "generation_p50_ms": round(gen_p50 * 1000, 1),
        "generation_p95_ms": round(p(gen_times, 0.95) * 1000, 1),
        "build_examples_per_s": round(len(examples) / build_s, 1),
        "build_seconds": round(build_s, 1),
        "grads_examples_per_s": {k: round(v, 1) for k, v in rates.items()},
        "grads_choice": "fused" if rates["fused"] >= rates["vmap"] else "vmap",
        "bytes_per_example": round(size / len(examples), 1),
        "index_bytes": size,
        "parameters": {
            "proj_dim": args.proj_dim,
            "dense_dim": proj.dense_dim,
            "lora": "rank 8 on q_proj, v_proj (factory defaults)",
            "base": "tiny base, default config (1.07 M parameters)",
            "example_tokens_mean": round(sum(len(e) for e in examples) / len(examples), 1),
            "queries": len(attr_times),
            "completion_tokens": 64,
            "lambda": meta["checkpoints"][0]["lambda"],
            "provenance": prov_meta["params"],
            "precision": (
                "provenance: float64 forward passes, exact credit; gradient: "
                "float64 query gradient, float16 index scored by float16 "
                "matrix-vector products; generation: float32"
            ),
            "build_workers": 2,
        },
        "machine": {**info, "load_average_at_end": __import__("os").getloadavg()},
    }
    print(json.dumps(doc, indent=1))
    if not args.small:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "attribution_speed.json").write_text(json.dumps(doc, indent=1) + "\n")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
