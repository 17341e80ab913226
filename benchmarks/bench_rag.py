"""Retrieval (RAG) attribution: index build, retrieval latency and context-ablation latency.

Measured here:
- building the FAISS index of a snapshot of a few thousand chunks (chunk, embed, write);
- retrieval latency: embedding one query + FAISS search, p50/p95 over the queries;
- ablation latency for k = 4 and 8: ``attribute`` with the k + 1 sequences in ONE padded
  forward pass (ours) beside the baseline of the same k + 1 passes one after another
  (``batch_size=1``), in the same run, on the same prompts; and the largest difference
  between the two results' drops (they must agree).

Snapshot: the package's sample datanets (text, prompt/completion and chat rows) plus
docstrings of the Python standard library as ``text`` rows (real English on every machine),
spread over 24 contributions, chunked at 32 words. Queries: the first 6-12 words of
randomly chosen chunks (seeded); ``self_hit_at_k`` says how often the chunk a query was
cut from is among the top k. Answers: the first 12 words of the top chunk (a copied
answer). Model: a tiny base built with a small config (as in tests/factory/conftest.py,
with room for 1,024 positions so k = 8 fits), cached under ``.openledger/bench-cache/``.

Torch runs on ``--threads`` intra-op threads (default 1: on this shared 2-core machine two
threads slow down many times over when another job is busy). The load average before and
after is recorded. Writes benchmarks/results/rag.json.
Run: ``python benchmarks/bench_rag.py [--chunks 3000] [--queries 40]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from openledger.attribution.rag import (
    ChunkingParams,
    Retriever,
    attribute,
    build_index,
    load_embedder,
    open_index,
)
from openledger.factory.base import load_base
from openledger.factory.corpus import pydoc_topics, sample_datanet_texts, stdlib_docstrings
from openledger.factory.tiny_base import build_tiny_base
from openledger.factory.tiny_config import TinyBaseConfig

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".openledger" / "bench-cache"
RESULTS = ROOT / "benchmarks" / "results" / "rag.json"
SAMPLES = ROOT / "src" / "openledger" / "datanets" / "samples"
SEED = 0
CONTRIBUTIONS = 24
#: The tiny base saves eager attention (per-example gradients need it); sdpa is what a
#: server would run. Both are timed.
ATTENTION = ("eager", "sdpa")
CHUNKING = ChunkingParams(max_words=32, max_chars=320)
TINY = TinyBaseConfig(
    vocab_size=2048,
    hidden_size=64,
    layers=2,
    heads=4,
    kv_heads=4,
    intermediate_size=128,
    max_position=1024,
    seq_len=64,
    batch_size=8,
    steps=40,
    lr=5e-3,
    warmup_steps=5,
    seed=0,
)


def tiny_base() -> Path:
    """The benchmark's tiny base, built once and cached by its config."""
    key = hashlib.sha256(json.dumps(asdict(TINY), sort_keys=True).encode()).hexdigest()[:12]
    out = CACHE / f"rag-tiny-base-{key}"
    if not (out / "config.json").is_file():
        corpus, total = [], 0
        for doc in sample_datanet_texts() + pydoc_topics():
            if total >= 150_000:
                break
            corpus.append(doc)
            total += len(doc)
        build_tiny_base(out, TINY, corpus=corpus, progress=False, overwrite=True)
    return out


def snapshot_rows(target_chunks: int) -> list[dict[str, Any]]:
    """Sample datanet rows, then stdlib docstrings, until about ``target_chunks`` chunks."""
    rows: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        i = len(rows)
        rows.append(
            {
                "record": i,
                "sha256": hashlib.sha256(f"{i}".encode()).hexdigest(),
                "kind": kind,
                "text": None,
                "prompt": None,
                "completion": None,
                "messages": None,
                **fields,
                "contribution": 1 + i % CONTRIBUTIONS,
                "contributor": f"0x{1 + i % CONTRIBUTIONS:040x}",
            }
        )

    for para in (SAMPLES / "ocean-facts.md").read_text().split("\n\n"):
        if para.strip() and not para.startswith("#"):
            add("text", text=para.strip())
    for line in (SAMPLES / "space-qa.jsonl").read_text().splitlines():
        doc = json.loads(line)
        add("chat" if "messages" in doc else "prompt_completion", **doc)
    words = 0
    for doc in stdlib_docstrings():
        if words >= target_chunks * CHUNKING.max_words * 0.8:
            break
        add("text", text=doc)
        words += len(doc.split())
    return rows


def percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "mean": round(float(np.mean(values)), 3),
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def time_ablation(
    model: Any, tokenizer: Any, retriever: Retriever, queries: list[str], k: int
) -> dict[str, Any]:
    """Ablation latency over ``queries``: one padded pass (ours) and k + 1 passes in a row."""
    batched_ms: list[float] = []
    sequential_ms: list[float] = []
    lengths: list[int] = []
    worst = 0.0
    truncated = 0
    augmented = [retriever.augment(q, k) for q in queries]
    answers = [" " + " ".join(a.chunks[0].chunk.text.split()[:12]) for a in augmented]
    attribute(model, tokenizer, augmented[0], answers[0])  # warm up
    for i, (aug, answer) in enumerate(zip(augmented, answers, strict=True)):
        # Alternate which runs first so neither always gets the warmer cache.
        order = ("batched", "sequential") if i % 2 == 0 else ("sequential", "batched")
        results = {}
        for mode in order:
            t0 = time.perf_counter()
            results[mode] = attribute(
                model, tokenizer, aug, answer, batch_size=None if mode == "batched" else 1
            )
            elapsed = (time.perf_counter() - t0) * 1e3
            (batched_ms if mode == "batched" else sequential_ms).append(elapsed)
        drops = [
            [e.detail["drop"] for e in sorted(r.evidence, key=lambda e: e.detail["rank"])]
            for r in results.values()
        ]
        worst = max(worst, max(abs(a - b) for a, b in zip(*drops, strict=True)))
        truncated += results["batched"].truncated
        lengths.append(len(tokenizer(aug.text)["input_ids"]))
    b, s = percentiles(batched_ms), percentiles(sequential_ms)
    return {
        "forward_passes": k + 1,
        "batched_ms": b,
        "sequential_ms": s,
        "speedup_p50": round(s["p50"] / b["p50"], 2),
        "max_abs_drop_difference": float(f"{worst:.2e}"),
        "prompt_tokens_mean": round(float(np.mean(lengths)), 1),
        "truncated": truncated,
    }


def main(target_chunks: int, n_queries: int, ks: list[int], threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    load_before = load()
    rng = random.Random(SEED)
    base_dir = tiny_base()
    embedder = load_embedder()
    rows = snapshot_rows(target_chunks)

    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        t0 = time.perf_counter()
        built = build_index(
            rows,
            Path(tmp) / "index",
            snapshot="bench@1",
            root="0x" + "00" * 32,
            embedder=embedder,
            chunking=CHUNKING,
        )
        build_s = time.perf_counter() - t0
        index_bytes = sum(p.stat().st_size for p in (Path(tmp) / "index").iterdir())
        t0 = time.perf_counter()
        index = open_index(Path(tmp) / "index", embedder=embedder)
        open_s = time.perf_counter() - t0
    load_after_build = load()

    chunks = index.chunks
    sources = rng.sample(range(len(chunks)), n_queries + 5)
    queries = [" ".join(chunks[i].text.split()[: rng.randint(6, 12)]) for i in sources]
    retriever = Retriever(index)
    for q in queries[:5]:  # warm up
        retriever.retrieve(q, max(ks))
    retrieval_ms: list[float] = []
    hits = 0
    for source, q in zip(sources[5:], queries[5:], strict=True):
        t0 = time.perf_counter()
        top = retriever.retrieve(q, max(ks))
        retrieval_ms.append((time.perf_counter() - t0) * 1e3)
        hits += any(r.chunk.id == source for r in top)
    queries = queries[5:]

    ablation: dict[str, Any] = {}
    for attn in ATTENTION:
        model, tokenizer = load_base(base_dir, attn_implementation=attn)
        ablation[attn] = {
            f"k{k}": time_ablation(model, tokenizer, retriever, queries, k) for k in ks
        }
    load_after = load()

    result = {
        "claim": "RAG attribution: FAISS (IndexFlatIP, cosine) index of a few thousand "
        "snapshot chunks embedded with all-MiniLM-L6-v2; retrieval latency (embed the query "
        "+ search); context-ablation latency for k = 4 and 8 with the k + 1 forward passes "
        "batched into one padded pass, beside the same passes one after another.",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": {
            "before": load_before,
            "after_build": load_after_build,
            "after": load_after,
            "note": "1/5/15-minute load (`uptime`) on a shared machine; above the core "
            "count means other jobs were running",
        },
        "params": {
            "embedding_model": embedder.name,
            "embedding_dim": embedder.dim,
            "chunking": CHUNKING.to_dict(),
            "ks": ks,
            "queries": n_queries,
            "query": "first 6-12 words of a random chunk",
            "answer": "first 12 words of the top retrieved chunk",
            "seed": SEED,
            "torch_threads": threads,
            "faiss_threads": threads,
            "base": {
                "config": asdict(TINY),
                "attn_implementations": list(ATTENTION),
                "parameters": sum(p.numel() for p in model.parameters()),
            },
        },
        "snapshot": {
            "rows": len(rows),
            "chunks": len(index),
            "contributions": CONTRIBUTIONS,
            "source": "sample datanets + Python stdlib docstrings",
        },
        "index": {
            "build_s": round(build_s, 2),
            "chunks_per_s": round(len(index) / build_s, 1),
            "bytes": index_bytes,
            "open_ms": round(open_s * 1e3, 1),
            "index_hash": built.index_hash,
        },
        "retrieval_ms": percentiles(retrieval_ms),
        "self_hit_at_k": round(hits / len(queries), 3),
        "self_hit_note": f"share of queries whose source chunk is in the top {max(ks)}",
        "ablation": ablation,
        "ablation_note": "per query: attribute() end to end (tokenising, fitting, forward "
        "passes); batched = the k + 1 sequences left-padded into one forward pass, "
        "sequential = batch_size=1, the same sequences one after another; both give the "
        "same drops (max_abs_drop_difference)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=3000, help="about this many chunks")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    main(args.chunks, args.queries, args.ks, args.threads)
