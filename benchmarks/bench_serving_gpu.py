"""OpenLoRA on one GPU: a Llama-3.2-1B-shaped model in bfloat16, rank-16 adapters on all seven
projections, N = 1, 64 and 1,000 adapters mixed in batches of 64.

Claims (issue 20, goals): ``mixed_over_base_1000`` ≥ 0.8 (our engine, every row of a batch
its own adapter out of 1,000, ÷ the same engine on the base model), ``mixed_over_peft_64``
(÷ PEFT ``generate`` with ``adapter_names``, same batch), ``base_over_hf`` (our engine on the
base ÷ HF ``generate``, KV cache, same batch) and ``bandwidth_fraction_64`` ≥ 0.25: the bytes
a decode step must read (weights, the adapters its rows use, the KV cache) ÷ the median
decode step time ÷ the GPU's memory bandwidth, each term in the JSON.

One script, in order: build the model (random weights, std 0.02, seed 0; nothing is
downloaded) and ``max(N)`` adapters (random, seeded, generated on the device, kept in host
memory as the host tier); **check** a mixed batch (a base row and rows of different
adapters) against each adapter merged into a float32 copy of the base, on the device
(logits teacher-forced on our tokens, relative error < 5e-2 in bfloat16; greedy tokens
reported); then **benchmark**: ``waves`` waves of ``batch`` requests (``prompt`` random
tokens, exactly ``new`` tokens greedily), wave w giving request i the adapter
``(i + batch·w) mod N``; time to first token and per output token at p50/p99 from the
engine's own event times; tokens/s over wall time. PEFT runs one wave (it is ~100× slower
on a GPU), compared with ours on that same wave. The device slot pool is sized by the engine
from free memory after the KV cache (at rank 16): the JSON says how many slots it holds.

Run on the device machine (no network there; PEFT is carried as a wheel)::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --platform manylinux2014_x86_64 -d .whl peft==0.21.2    # a py3-none-any wheel
    # device: carry .whl, then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=src:/tmp/site python3 benchmarks/bench_serving_gpu.py

writes ``benchmarks/results/serving-<gpu>.json``. ``--device cpu --small`` runs the same
script on a 2-layer model of width 256 in seconds (CI-sized; the test suite runs it), writing
to the bench cache, not to results/.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, RESULTS, machine
from llama_shape import LLAMA_1B, RANK, TARGETS, build_model, prompts, stamper

from openledger.serving.adapters import LoraAdapter
from openledger.serving.arch import NATIVE, DecoderShape
from openledger.serving.engine import Engine, EngineConfig
from openledger.serving.sampling import SamplingParams

FULL = LLAMA_1B
SMALL = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
}
#: Peak memory bandwidth (bytes/s) by device name; --bandwidth-gbs overrides.
BANDWIDTH = {
    "h100 80gb hbm3": 3.35e12,
    "h100 pcie": 2.0e12,
    "h100 nvl": 3.9e12,
    "h200": 4.8e12,
    "a100-sxm4-80gb": 2.04e12,
    "a100-sxm4-40gb": 1.56e12,
}


class ByteDetokenizer:
    """Text for random token ids: each id as one byte (the engine streams text per token)."""

    eos_token_id = None

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(i % 256 for i in ids).decode("utf-8", errors="replace")


def make_adapters(
    shapes: dict[str, tuple[int, int]], layers: int, n: int, device: torch.device
) -> dict[str, LoraAdapter]:
    """``n`` rank-16 adapters on all seven projections, generated on the device, kept in
    host memory (the host tier) in bfloat16; alpha = 2·rank folded into b."""
    out = {}
    g = torch.Generator(device=device).manual_seed(1)
    for i in range(n):
        a, b = {}, {}
        for layer in range(layers):
            for m in TARGETS:
                d_in, d_out = shapes[m]
                a[(layer, m)] = (
                    torch.randn(d_in, RANK, generator=g, device=device) / d_in**0.5
                ).to("cpu", torch.bfloat16)
                b[(layer, m)] = (torch.randn(RANK, d_out, generator=g, device=device) * 0.02).to(
                    "cpu", torch.bfloat16
                )
        out[f"a{i}"] = LoraAdapter(f"a{i}", a, b)
    return out


def assignment(n: int | None, waves: int, batch: int) -> list[list[str | None]]:
    if n is None:
        return [[None] * batch for _ in range(waves)]
    return [[f"a{(i + batch * w) % n}" for i in range(batch)] for w in range(waves)]


def pct(values: list[float], q: int) -> float:
    values = sorted(values)
    return values[0] if len(values) == 1 else statistics.quantiles(values, n=100)[q - 1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_engine(
    engine: Engine,
    waves: list[list[list[int]]],
    names: list[list[str | None]],
    new: int,
    device: torch.device,
) -> dict[str, Any]:
    params = SamplingParams(max_tokens=new, temperature=0, ignore_eos=True)
    tokens, ttft, tpot, steps, loads = 0, [], [], [], engine.slots.loads
    sync(device)
    start = time.perf_counter()
    for batch, adapters in zip(waves, names, strict=True):
        stamps: dict[int, list[float]] = {}
        requests = [
            engine.submit(p, adapter=a, params=params, sink=stamper(stamps, i))
            for i, (p, a) in enumerate(zip(batch, adapters, strict=True))
        ]
        while not all(r.done for r in requests):
            t = time.perf_counter()
            engine.step()
            steps.append(time.perf_counter() - t)
        tokens += sum(len(r.tokens) for r in requests)
        for r, (_, s) in zip(requests, sorted(stamps.items()), strict=True):
            s = s[:-1]  # the last event is "done"
            ttft.append(s[0] - r.submitted_at)
            tpot.append((s[-1] - s[0]) / (len(s) - 1))
    sync(device)
    seconds = time.perf_counter() - start
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "seconds": round(seconds, 3),
        "tokens": tokens,
        "ttft_p50_ms": round(pct(ttft, 50) * 1e3, 3),
        "ttft_p99_ms": round(pct(ttft, 99) * 1e3, 3),
        "tpot_p50_ms": round(pct(tpot, 50) * 1e3, 3),
        "tpot_p99_ms": round(pct(tpot, 99) * 1e3, 3),
        "decode_step_p50_ms": round(statistics.median(steps[1:] or steps) * 1e3, 3),
        "slot_loads": engine.slots.loads - loads,
    }


def hf_generate(
    model: Any, waves: list[list[list[int]]], new: int, device: torch.device, **kwargs: Any
) -> dict[str, Any]:
    tokens = 0
    sync(device)
    start = time.perf_counter()
    for batch in waves:
        ids = torch.tensor(batch, device=device)
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=-1,
                **kwargs,
            )
        tokens += (out.shape[1] - ids.shape[1]) * len(batch)
    sync(device)
    seconds = time.perf_counter() - start
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "seconds": round(seconds, 3),
        "tokens": tokens,
    }


def merged_reference(model: Any, adapter: LoraAdapter | None) -> Any:
    """A float32 copy of the base with ``adapter`` merged (W + (a·b)ᵀ), for checking."""
    ref = copy.deepcopy(model).float()
    if adapter is not None:
        layers = ref.model.layers
        with torch.no_grad():
            for (layer, m), a in adapter.a.items():
                block = (
                    layers[layer].mlp
                    if m in ("gate_proj", "up_proj", "down_proj")
                    else layers[layer].self_attn
                )
                lin = getattr(block, m)
                delta = (a.float() @ adapter.b[(layer, m)].float()).t().to(lin.weight.device)
                lin.weight.data = lin.weight.data + delta  # unfused: its own tensor
    return ref.eval()


def check_rows(
    engine: Engine,
    model_copy: Any,
    adapters: dict[str, LoraAdapter],
    vocab: int,
    device: torch.device,
    rows: int,
) -> dict[str, Any]:
    """A mixed batch (a base row, then ``rows - 1`` different adapters) against each row's
    merged float32 reference, teacher-forced on the tokens our engine chose."""
    g = torch.Generator().manual_seed(7)
    names: list[str | None] = [None, *[f"a{i}" for i in range(rows - 1)]]
    batch = [torch.randint(0, vocab, (8 + i,), generator=g).tolist() for i in range(rows)]
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rs, logits: [
        seen.setdefault(r.id, []).append(logits[i].float().cpu()) for i, r in enumerate(rs)
    ]
    params = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)
    requests = [
        engine.submit(p, adapter=n, params=params) for p, n in zip(batch, names, strict=True)
    ]
    while not all(r.done for r in requests):
        engine.step()
    engine.on_logits = None
    errors, agree = [], []
    for prompt, name, r in zip(batch, names, requests, strict=True):
        ref = merged_reference(model_copy, None if name is None else adapters[name])
        full = torch.tensor([prompt + r.tokens[:-1]], device=device)
        with torch.no_grad():
            expected = ref(full).logits[0, len(prompt) - 1 :].float().cpu()
        ours = torch.stack(seen[r.id])
        errors.append(float((ours - expected).abs().max() / expected.abs().max()))
        agree.append(float((ours.argmax(-1) == expected.argmax(-1)).float().mean()))
        del ref
    worst = max(errors)
    return {
        "rows": rows,
        "max_relative_logit_error": round(worst, 5),
        "greedy_agreement": round(min(agree), 3),
        "passed": worst < 5e-2,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--small", action="store_true", help="2 layers, width 256 (CPU smoke run)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--waves", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ns", default="1,64,1000", help="adapter counts (comma-separated)")
    ap.add_argument("--bandwidth-gbs", type=float, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or pass --device cpu --small")
    device = torch.device(args.device)
    torch.manual_seed(0)
    say = print
    started = machine()
    shape = SMALL if args.small else FULL
    ns = [int(n) for n in args.ns.split(",")]
    max_ctx = args.prompt + args.new + 8
    t0 = time.perf_counter()
    model = build_model(shape, max_ctx, device, attn_implementation="sdpa")
    n_params = sum(p.numel() for p in model.parameters())
    ref_base = copy.deepcopy(model)  # unfused, for the merged references
    say(f"model: {n_params / 1e9:.3f} B parameters on {device} ({time.perf_counter() - t0:.1f} s)")
    config = EngineConfig(
        max_batch=args.batch,
        max_ctx=max_ctx,
        max_lora_rank=RANK,
        host_tier_bytes=1 << 45,
        device_slots=0,
    )
    pool: dict[str, LoraAdapter] = {}
    engine = Engine(
        model,
        ByteDetokenizer(),
        lambda name: Path(name),
        config,
        loader=lambda name, path: pool[name],
    )
    spec_shape = DecoderShape.from_config(model.config)
    t0 = time.perf_counter()
    pool.update(
        make_adapters(spec_shape.target_shapes(NATIVE["llama"]), spec_shape.layers, max(ns), device)
    )
    per_adapter = pool["a0"].nbytes
    for name in pool:
        engine.adapters.load_now(name)
    say(
        f"{len(pool)} adapters of {per_adapter:,} bytes in the host tier "
        f"({time.perf_counter() - t0:.1f} s); device slots: {engine.slots.capacity}"
    )

    check = check_rows(engine, ref_base, pool, shape["vocab_size"], device, rows=min(8, args.batch))
    say(f"check against merged references: {check}")
    del ref_base

    waves = prompts(shape["vocab_size"], args.waves, args.batch, args.prompt)
    run_engine(engine, waves[:1], assignment(None, 1, args.batch), args.new, device)  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {"base": [], **{str(n): [] for n in ns}}
    for rep in range(args.repeats):
        for key, n in [("base", None), *((str(n), n) for n in ns)]:
            runs[key].append(
                run_engine(engine, waves, assignment(n, args.waves, args.batch), args.new, device)
            )
            say(f"repeat {rep}: ours {key}: {runs[key][-1]}")
    ours = {k: sorted(v, key=lambda r: r["tokens_per_s"])[len(v) // 2] for k, v in runs.items()}
    peft_n = min(64, max(ns))  # PEFT's side of mixed_over_peft_64 (fewer in a small run)
    one_wave_64 = run_engine(engine, waves[:1], assignment(peft_n, 1, args.batch), args.new, device)
    stats = engine.stats()
    engine.stop()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    del engine, model
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # a plain HF model (ours fused its projections)
    hf = build_model(shape, max_ctx, device, attn_implementation="sdpa")
    hf_generate(hf, waves[:1], args.new, device)
    hf_base = hf_generate(hf, waves, args.new, device)
    say(f"HF generate, base: {hf_base}")
    peft_64: dict[str, Any] | None = None
    try:
        from peft import LoraConfig, get_peft_model
        from peft.utils import set_peft_model_state_dict
    except ImportError:
        say("PEFT is not installed here: carry its wheel (see the docstring); skipped")
    else:
        lcfg = LoraConfig(r=RANK, lora_alpha=RANK, target_modules=list(TARGETS), lora_dropout=0.0)
        peft = get_peft_model(hf, lcfg, adapter_name="a0", autocast_adapter_dtype=False)
        for i in range(peft_n):
            name = f"a{i}"
            if i:
                peft.add_adapter(name, lcfg, autocast_adapter_dtype=False)
            ad = pool[name]  # alpha = r: scale 1, b already holds s·B
            state = {}
            for (layer, m), a in ad.a.items():
                block = "mlp" if m in ("gate_proj", "up_proj", "down_proj") else "self_attn"
                key = f"base_model.model.model.layers.{layer}.{block}.{m}"
                state[f"{key}.lora_A.weight"] = a.t().contiguous()
                state[f"{key}.lora_B.weight"] = ad.b[(layer, m)].t().contiguous()
            set_peft_model_state_dict(peft, state, adapter_name=name)
        peft.to(device).eval()
        peft_64 = hf_generate(
            peft, waves[:1], args.new, device, adapter_names=assignment(peft_n, 1, args.batch)[0]
        )
        say(f"PEFT adapter_names, 64 mixed (one wave): {peft_64}; ours same wave: {one_wave_64}")

    # Bytes one decode step must read at batch `batch` with 64 distinct adapters: every
    # weight once (the tied embedding as the lm_head), the rows' adapters, the KV cache.
    adapters_touched = min(peft_n, args.batch) * per_adapter
    avg_ctx = args.prompt + args.new / 2
    kv_bytes = (
        2 * spec_shape.layers * args.batch * spec_shape.kv_heads * avg_ctx * spec_shape.head_dim * 2
    )
    step_s = ours[str(peft_n)]["decode_step_p50_ms"] / 1e3 if str(peft_n) in ours else float("nan")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    bandwidth = (
        args.bandwidth_gbs * 1e9
        if args.bandwidth_gbs
        else next((v for k, v in BANDWIDTH.items() if k in name.lower()), None)
    )
    step_bytes = weight_bytes + adapters_touched + kv_bytes
    fraction = None if bandwidth is None else round(step_bytes / step_s / bandwidth, 4)
    base_tps = ours["base"]["tokens_per_s"]
    doc: dict[str, Any] = {
        "claim": "1,000 adapters mixed in batches of 64 near the base model's speed on one GPU",
        "mixed_over_base_1000": round(ours["1000"]["tokens_per_s"] / base_tps, 3)
        if "1000" in ours
        else None,
        "mixed_over_base": {n: round(ours[n]["tokens_per_s"] / base_tps, 3) for n in map(str, ns)},
        "mixed_over_peft_64": None
        if peft_64 is None
        else round(one_wave_64["tokens_per_s"] / peft_64["tokens_per_s"], 2),
        "base_over_hf": round(base_tps / hf_base["tokens_per_s"], 3),
        "bandwidth_fraction_64": fraction,
        "bandwidth": {
            "weight_bytes_per_step": weight_bytes,
            "adapter_bytes_per_step": adapters_touched,
            "kv_bytes_per_step": int(kv_bytes),
            "bytes_per_step": int(step_bytes),
            "decode_step_p50_s": step_s,
            "peak_bytes_per_s": bandwidth,
        },
        "device_slots": stats["device_slots"],
        "adapters_in_device_slots": stats["device_adapters"],
        "bytes_per_adapter": per_adapter,
        "check": check,
        "results": {
            "ours": ours,
            "ours_all_runs": runs,
            "ours_64_one_wave": one_wave_64,
            "hf_base": hf_base,
            "peft_64_one_wave": peft_64,
        },
        "engine_stats": stats,
        "parameters": {
            "device": str(device),
            "dtype": "bfloat16",
            "batch": args.batch,
            "prompt_tokens": args.prompt,
            "new_tokens": args.new,
            "waves": args.waves,
            "repeats_median_kept": args.repeats,
            "ns": ns,
            "rank": RANK,
            "targets": list(TARGETS),
            "small": args.small,
            "model": {**shape, "parameters": n_params, "tied_embeddings": True},
        },
        "machine": {**started, "gpu": name},
    }
    if args.out is not None:
        out = args.out
    elif device.type == "cuda":
        out = RESULTS / f"serving-{name.lower().replace(' ', '-')}.json"
    else:
        out = CACHE / "serving-gpu-script-cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    say(
        json.dumps(
            {k: v for k, v in doc.items() if k not in ("results", "machine", "engine_stats")},
            indent=2,
        )
    )
    if not check["passed"]:
        sys.exit(f"a mixed row differs from its merged reference: {check}")


if __name__ == "__main__":
    main()
