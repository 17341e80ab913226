"""Training throughput of the Model Factory's trainer against a plain Hugging Face
`Trainer` + PEFT run on the same model and data, in the same process.

Claim: tokens_per_s_ratio_vs_hf ≥ 1.0. Both train the same LoRA (rank, alpha, targets, lr,
batch size, epochs) on the same tokenised prompt/completion examples of a synthetic datanet,
from the same offline tiny base; tokens are the real (non-padding) tokens of the training
examples, times epochs; time is the training loop (ours: step time measured by the trainer;
HF: `train_runtime` of `Trainer.train()`). peak_rss_mb is the process's peak resident set
after our run (before the HF run). Writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import tempfile
import time
from pathlib import Path

import torch

from openledger.factory.base import load_base
from openledger.factory.config import TrainConfig
from openledger.factory.data import build_examples, split_eval
from openledger.factory.tiny_base import build_tiny_base
from openledger.factory.tiny_config import TinyBaseConfig
from openledger.factory.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))

    out = []
    for i in range(n):
        out.append(
            {
                "record": i,
                "sha256": f"{i:064x}",
                "kind": "prompt_completion",
                "text": None,
                "prompt": f"What is known about {word()} {word()}?",
                "completion": " ".join(word() for _ in range(rng.randint(12, 40))) + ".",
                "messages": None,
                "contribution": 1 + i % 7,
                "contributor": "0x" + "11" * 20,
            }
        )
    return out


def hf_run(base_dir: Path, train, cfg: TrainConfig, out_dir: Path) -> float:
    """Seconds of HF Trainer.train() for the same LoRA on the same examples."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    model, tok = load_base(base_dir)
    model = get_peft_model(
        model,
        LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=0.0,
            target_modules=list(cfg.target_modules),
        ),
    )
    pad = tok.pad_token_id

    def collate(batch: list[dict]) -> dict:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    data = [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in train]
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="linear",
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    trainer = HFTrainer(model=model, args=args, train_dataset=data, data_collator=collate)
    out = trainer.train()
    return float(out.metrics["train_runtime"])


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-seq-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        base_dir = build_tiny_base(tmp / "tiny-base", TinyBaseConfig(steps=60), progress=False)
        base_s = time.perf_counter() - t0
        model, tok = load_base(base_dir)
        cfg = TrainConfig.from_mapping(
            {
                "rank": 8,
                "alpha": 16,
                "target_modules": ["q_proj", "v_proj"],
                "lr": 1e-3,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "max_seq_len": args.max_seq_len,
                "eval_split": 0.1,
                "seed": args.seed,
                "checkpoint_every": 10_000,
            }
        )
        examples = build_examples(
            rows(args.rows, args.seed), tok, max_seq_len=cfg.max_seq_len, snapshot="bench@1"
        )
        train, evaluation = split_eval(examples, cfg.eval_split, cfg.seed)
        tokens = sum(len(e.input_ids) for e in train) * cfg.epochs

        ours = Trainer(model, tok, train, evaluation, cfg, tmp / "ours", progress=False)
        t1 = time.perf_counter()
        result = ours.run(resume=False)
        ours_wall = time.perf_counter() - t1
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ours_tps = result.tokens_per_s

        hf_seconds = hf_run(base_dir, train, cfg, tmp / "hf")
        hf_tps = tokens / hf_seconds

    doc = {
        "claim": "our trainer's training tokens/s over a plain HF Trainer + PEFT run on the same "
        "model and data, in the same process",
        "tokens_per_s_ratio_vs_hf": round(ours_tps / hf_tps, 3),
        "tokens_per_s_ratio_target": 1.0,
        "ours": {
            "tokens_per_s": round(ours_tps, 1),
            "train_tokens": result.train_tokens,
            "steps": result.steps,
            "run_wall_s_incl_evals_and_checkpoints": round(ours_wall, 2),
            "eval_ppl_base": result.base_eval_ppl,
            "eval_ppl_adapter": result.adapter_eval_ppl,
        },
        "baseline": {
            "name": "transformers.Trainer + peft.get_peft_model, same LoRA, data, "
            "batch size, epochs, lr, linear schedule",
            "tokens_per_s": round(hf_tps, 1),
            "train_runtime_s": round(hf_seconds, 2),
            "tokens": tokens,
        },
        "peak_rss_mb": round(peak_rss_mb, 1),
        "parameters": {
            "rows": args.rows,
            "train_examples": len(train),
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "max_seq_len": cfg.max_seq_len,
            "rank": cfg.rank,
            "target_modules": list(cfg.target_modules),
            "base": "tiny-base (60 pretraining steps)",
            "base_build_s": round(base_s, 1),
            "torch_threads": torch.get_num_threads(),
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = ROOT / "benchmarks" / "results" / "train.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return doc


if __name__ == "__main__":
    main()
