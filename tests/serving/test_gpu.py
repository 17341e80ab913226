"""The GPU path: bfloat16 on CUDA against the merged model (skipped without a GPU), and the
GPU benchmark script, which must run on CPU (``--device cpu --small``) so that it is ready
for a GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openledger.factory.base import load_base
from openledger.serving.engine import Engine, EngineConfig
from openledger.serving.sampling import SamplingParams
from tests.serving.test_engine import merged, prompts, relative_error, run_manually

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_benchmark_runs_on_cpu_and_checks_its_rows(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_serving_gpu.py"),
        "--device",
        "cpu",
        "--small",
        "--batch",
        "4",
        "--prompt",
        "4",
        "--new",
        "3",
        "--waves",
        "1",
        "--repeats",
        "1",
        "--ns",
        "1,4,6",
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text())
    check = doc["check"]
    assert check["passed"] and check["rows"] == 4 and check["max_relative_logit_error"] < 5e-2
    assert set(doc["mixed_over_base"]) == {"1", "4", "6"}
    assert doc["mixed_over_peft_64"] > 0 and doc["base_over_hf"] > 0
    # auto on CPU: 2 x batch; one wave of 4 rows used a0 … a3 only
    assert doc["device_slots"] == 8 and doc["adapters_in_device_slots"] == 4
    b = doc["bandwidth"]
    assert b["bytes_per_step"] == (
        b["weight_bytes_per_step"] + b["adapter_bytes_per_step"] + b["kv_bytes_per_step"]
    )
    assert b["adapter_bytes_per_step"] == 4 * doc["bytes_per_adapter"]  # 4 rows, 4 adapters
    assert doc["bandwidth_fraction_64"] is None  # no bandwidth figure for a CPU
    assert doc["results"]["ours"]["6"]["tokens"] == 4 * 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bfloat16_on_cuda_matches_the_merged_model(tiny_base_dir: Path, adapters_dir: Path) -> None:
    model, tokenizer = load_base(tiny_base_dir, dtype=torch.bfloat16)
    model.to("cuda")
    engine = Engine(model, tokenizer, lambda n: adapters_dir / n, EngineConfig(max_batch=8))
    assert engine.slots.device.type == "cuda" and engine.slots.capacity >= 8
    seen: dict[int, list[torch.Tensor]] = {}
    engine.on_logits = lambda rows, logits: [
        seen.setdefault(r.id, []).append(logits[i].float().cpu()) for i, r in enumerate(rows)
    ]
    names = [f"ad{i}" for i in range(0, 16, 2)]
    batch = prompts(tokenizer, len(names))
    params = SamplingParams(max_tokens=4, temperature=0, ignore_eos=True)
    requests = [
        engine.submit(p, adapter=n, params=params) for p, n in zip(batch, names, strict=True)
    ]
    run_manually(engine, requests)
    for request, name, prompt in zip(requests, names, batch, strict=True):
        reference = merged(tiny_base_dir, adapters_dir / name)
        full = torch.tensor([prompt + request.tokens[:-1]])
        with torch.no_grad():
            ref = reference(full).logits[0, len(prompt) - 1 :]
        assert relative_error(torch.stack(seen[request.id]), ref) < 3e-2, name
