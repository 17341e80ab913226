"""Anyone can check a receipt: rebuild the indexes and recompute the weights, exactly.

Runs `openledger demo` in a fresh home (devnet, datanet, training, publishing, nine paid
completions, an epoch), then, from that home's public artefacts:

- rebuilds the model's provenance index with one and with two torch threads, and a
  gradient index of the same adapter with (1 thread, batch 1) and (2 threads, batch 16):
  ``rebuild_hash_equal`` is true when every rebuild gives the same index hash (and the
  provenance one the hash registered in ModelRegistry);
- recomputes every receipt's attribution with one and with two threads:
  ``recompute_equal`` is true when every weight equals the receipt's, to the part per billion;
- times ``openledger verify receipt`` on every receipt of the epoch with one Verifier
  (artefacts checked and indexes rebuilt once per model): ``verify_s_per_receipt``, and the
  first receipt's time alone (which includes the rebuild).

It also records the demo's own tallies: how many of its nine paid answers hold the key
fact of the record they came from, and how often that record's contributor has the largest
share; and how long the demo took (from an empty home: the tiny base is built too).

Writes benchmarks/results/attribution_verify.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine

PASSWORD = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_threads(n: int, fn):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def main() -> None:
    info = machine()
    home = Path(tempfile.mkdtemp(prefix="bench-verify-")) / "home"
    env = {
        **os.environ,
        "OPENLEDGER_HOME": str(home),
        "OPENLEDGER_PASSWORD": PASSWORD,
        "OPENLEDGER_CHAIN_PORT": str(free_port()),
    }
    env.pop("OPENLEDGER_CHAIN_URL", None)
    cli = [sys.executable, "-m", "openledger.cli.main"]
    t0 = time.perf_counter()
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    demo = subprocess.run([*cli, "demo"], env=env, capture_output=True, text=True)
    if demo.returncode != 0:
        raise SystemExit(demo.stdout + demo.stderr)
    demo_s = time.perf_counter() - t0
    tally = re.search(
        r"key fact of the record they came from: (\d+)/(\d+); the record's "
        r"contributor has the largest share: (\d+)/(\d+)",
        demo.stdout,
    )
    try:
        doc = measure(home, env)
    finally:
        subprocess.run([*cli, "chain", "down"], env=env, capture_output=True)
        shutil.rmtree(home.parent, ignore_errors=True)
    doc = {
        "claim": "a receipt's attribution is a deterministic function of public artefacts: "
        "anyone rebuilds the index hash and recomputes the weights exactly",
        **doc,
        "demo_seconds": round(demo_s, 1),
        "demo_answers_with_key_fact": f"{tally[1]}/{tally[2]}" if tally else None,
        "demo_owner_top1": f"{tally[3]}/{tally[4]}" if tally else None,
        "machine": {**info, "load_average_at_end": os.getloadavg()},
    }
    print(json.dumps(doc, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "attribution_verify.json").write_text(json.dumps(doc, indent=1) + "\n")


def measure(home: Path, env: dict[str, str]) -> dict:
    import torch

    from openledger.attribution import provenance
    from openledger.attribution.gradient.build import BuildParams, BuildPlan, CheckpointRef
    from openledger.attribution.gradient.build import build_index as build_gradient
    from openledger.attribution.gradient.for_model import training_examples
    from openledger.attribution.gradient.loading import ModelSpec
    from openledger.attribution.snapshot_indexes import tokenizer_id
    from openledger.config import Settings
    from openledger.factory.base import load_tokenizer
    from openledger.ledger.pricing.fees import weights_ppb
    from openledger.ledger.verification.proofs import LocalSource, epoch_receipts
    from openledger.ledger.verification.verify import Verifier
    from openledger.node import Node

    os.environ.update({k: v for k, v in env.items() if k.startswith("OPENLEDGER_")})
    node = Node(Settings.load(home=home), password_source=lambda: PASSWORD)
    try:
        model = node.models.get("open-facts-lora")
        tok = load_tokenizer(model["base"])
        train = training_examples(model, node.jobs, node.snapshots, tok)
        meta = node.attribution.provenance_index(model["name"])[1].meta
        work = home.parent / "rebuilds"

        def prov(n: int) -> str:
            out = provenance.build(
                train,
                work / f"prov-{n}",
                vocab_size=len(tok),
                tokenizer_id=tokenizer_id(tok),
                identity=meta["identity"],
                params=provenance.ProvenanceParams(**meta["params"]),
            )
            return out["index_hash"]

        def grad(n: int, batch: int) -> str:
            plan = BuildPlan(
                spec=ModelSpec(model["base"], model["adapter_dir"]),
                examples=train,
                checkpoints=[CheckpointRef("published", model["adapter_sha256"])],
                params=BuildParams(proj_dim=256, batch_size=batch),
                identity={"model": model["name"]},
            )
            return build_gradient(plan, work / f"grad-{n}-{batch}", progress=False)["index_hash"]

        registered = "0x" + bytes(node.contracts.models.model(model["id"]).index_hash).hex()
        prov_hashes = [with_threads(1, lambda: prov(1)), with_threads(2, lambda: prov(2))]
        grad_hashes = [with_threads(1, lambda: grad(1, 1)), with_threads(2, lambda: grad(2, 16))]
        rebuild_equal = len(set(prov_hashes)) == 1 and prov_hashes[0] == registered
        rebuild_equal = rebuild_equal and len(set(grad_hashes)) == 1

        epoch = node.epochs.latest_settled().number
        seqs = epoch_receipts(node, epoch)
        source = LocalSource(node)
        recompute_equal = True
        compared = 0
        for seq in seqs:
            body = node.ledger.receipt(seq)["receipt"]
            summary = body["attribution"]
            prompt, completion = source.query(summary["query_hash"])
            claimed = {s["contribution"]: s["weight_ppb"] for s in summary["shares"]}
            for n in (1, 2):
                node.attribution._provenance.clear()
                node.attribution._loaded.clear()
                got = with_threads(
                    n,
                    lambda p=prompt, c=completion: node.attribution.attribute_ids(
                        model["name"], p, c
                    ).weights(),
                )
                recompute_equal &= weights_ppb(got) == claimed
                compared += 1
        times = []
        t_all = time.perf_counter()
        with Verifier(source) as verifier:
            for seq in seqs:
                t = time.perf_counter()
                v = verifier.receipt(node.ledger.public_id(seq))
                times.append(time.perf_counter() - t)
                if not v.ok:
                    raise SystemExit(f"receipt {seq} does not verify: {v.to_dict()}")
        total = time.perf_counter() - t_all
    finally:
        node.close()
    return {
        "rebuild_hash_equal": bool(rebuild_equal),
        "recompute_equal": bool(recompute_equal),
        "verify_s_per_receipt": round(total / len(seqs), 3),
        "verify_first_receipt_s": round(times[0], 3),
        "verify_later_receipts_s_mean": round(sum(times[1:]) / max(1, len(times) - 1), 3),
        "receipts_verified": len(seqs),
        "recomputations_compared": compared,
        "hashes": {"provenance": prov_hashes, "registered": registered, "gradient": grad_hashes},
        "parameters": {
            "provenance": meta["params"],
            "gradient": {"proj_dim": 256, "batches": [1, 16], "threads": [1, 2]},
            "torch_threads_default": torch.get_num_threads(),
        },
    }


if __name__ == "__main__":
    main()
