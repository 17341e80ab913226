"""Ingest throughput of `contribute`, near-duplicate check included, into a datanet that
already holds 100,000 records; and the near-duplicate index's bytes per record.

Claims: mb_per_min ≥ 20 on a 2-core machine; dedup_bytes_per_record ≤ 1,024.
Baseline in the same run: the near-duplicate check done without LSH (exact Jaccard of each
new record against every stored record), timed on a sample and scaled to the same bytes.

The whole path is real: parsing, normalising, hashing, exact and MinHash LSH dedup, blobs,
SQLite rows, the signed manifest and the approve + contribute transactions on anvil.
Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import socket
import tempfile
import time
from pathlib import Path

from openledger.config import Settings
from openledger.datanets.records import Record
from openledger.governance.devnet import pass_proposal
from openledger.home import init_home
from openledger.node import Node
from openledger.units import OPEN

ROOT = Path(__file__).resolve().parents[1]
BASELINE_SAMPLE = 5_000  # stored records the no-LSH scan is timed against, then scaled
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "te",
    "su",
    "po",
    "an",
    "el",
    "or",
    "vi",
    "de",
    "nu",
    "sa",
    "ti",
    "ko",
    "be",
    "la",
    "mo",
    "ri",
    "st",
    "ph",
    "gr",
    "qu",
    "en",
]


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def paragraph(rng: random.Random, vocab: list[str], chars: int) -> str:
    sentences, length = [], 0
    while length < chars:
        words = [rng.choice(vocab) for _ in range(rng.randint(6, 18))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)


def write_jsonl(path: Path, rng: random.Random, vocab: list[str], n: int, chars: int) -> int:
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(n):
            fh.write(json.dumps({"text": paragraph(rng, vocab, chars)}) + "\n")
    return path.stat().st_size


def shingles(text: str, k: int = 5) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i : i + k] for i in range(max(1, len(t) - k + 1))}


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--existing", type=int, default=100_000, help="records already stored")
    ap.add_argument("--new-mb", type=float, default=10.0, help="MB contributed in the timed run")
    ap.add_argument("--record-chars", type=int, default=900)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    vocab = vocabulary(rng)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = Settings.load(
            env={"OPENLEDGER_HOME": str(tmp / "home"), "OPENLEDGER_CHAIN_PORT": str(port)}
        )
        init_home(settings, "bench")
        node = Node(settings, password_source=lambda: "bench")
        node.chain_up()
        try:
            return run(node, tmp, rng, vocab, args)
        finally:
            node.devnet.down()


def run(node: Node, tmp: Path, rng: random.Random, vocab: list[str], args) -> dict:
    acc = node.accounts
    operator = acc.signer("operator")
    # the upload cap is a governance parameter (the Timelock owns ProtocolParams from deploy):
    # raised by a proposal the operator passes alone, the devnet clock moved past each wait
    raise_cap = node.contracts.params.contract.functions.setParam("max_files_per_day", 10_000)
    pass_proposal(node.contracts, operator, [raise_cap], "benchmark: raise the upload cap")
    node.datanets.create(
        "bench",
        description="ingest benchmark",
        validators=[acc.address("bob")],
        quorum=1,
        min_stake=10 * OPEN,
        signer=acc.signer("dave"),
    )
    alice = acc.signer("alice")

    # -- fill the datanet with `existing` records (not timed) --------------------------------
    per_file = 10_000
    filled, t_fill = 0, time.perf_counter()
    while filled < args.existing:
        n = min(per_file, args.existing - filled)
        path = tmp / f"fill-{filled}.jsonl"
        write_jsonl(path, rng, vocab, n, args.record_chars)
        node.contributions.contribute("bench", [path], stake=10 * OPEN, signer=alice)
        path.unlink()
        filled += n
        print(f"filled {filled:,} records ({time.perf_counter() - t_fill:.0f} s)", flush=True)
    fill_s = time.perf_counter() - t_fill

    # -- timed: contribute new data in files of at most 2 MB ----------------------------------
    new_files, new_bytes, new_records = [], 0, 0
    target = int(args.new_mb * 1_000_000)
    while new_bytes < target:
        n = 2_000
        path = tmp / f"new-{len(new_files)}.jsonl"
        new_bytes += write_jsonl(path, rng, vocab, n, args.record_chars)
        new_records += n
        new_files.append(path)
    t0 = time.perf_counter()
    for path in new_files:
        node.contributions.contribute("bench", [path], stake=10 * OPEN, signer=acc.signer("erin"))
    seconds = time.perf_counter() - t0
    mb_per_min = new_bytes / 1e6 / seconds * 60

    dn_id = node.datanets.show("bench")["id"]
    with node.db.session() as s:
        from openledger.datanets.queries import get_datanet

        local_id = get_datanet(s, "bench").id
    index = node.neardup.index_for(local_id)
    bytes_per_record = index.bytes_on_disk() / len(index)

    # -- baseline: exact Jaccard of new records against every stored record ------------------
    from openledger.datanets.queries import live_records

    with node.db.session() as s:
        stored = live_records(s, local_id)
    # Shingle sets of every stored record would not fit in memory; the scan's cost is linear
    # in the number of stored records, so time it against a sample and scale.
    sampled = rng.sample(stored, BASELINE_SAMPLE)
    stored_sets = [
        {hash(g) for g in shingles(Record.from_canonical(json.loads(c)).content_text)}
        for _, c in sampled
    ]
    sample = [paragraph(rng, vocab, args.record_chars) for _ in range(5)]
    t1 = time.perf_counter()
    for text in sample:
        a = {hash(g) for g in shingles(text)}
        for b in stored_sets:
            _ = len(a & b) / len(a | b)
    per_record = (time.perf_counter() - t1) / len(sample) * len(stored) / BASELINE_SAMPLE
    baseline_seconds = per_record * new_records
    baseline_mb_per_min = new_bytes / 1e6 / baseline_seconds * 60

    result = {
        "claim": "contribute throughput with the near-duplicate check against a datanet already "
        f"holding {args.existing:,} records; near-duplicate index bytes per record",
        "mb_per_min": round(mb_per_min, 2),
        "mb_per_min_target": 20,
        "dedup_bytes_per_record": round(bytes_per_record, 1),
        "dedup_bytes_per_record_target": 1024,
        "baseline": {
            "name": "near-duplicate check by exact Jaccard against every stored record "
            "(no LSH), near-duplicate check alone; timed for 5 new records against "
            f"{BASELINE_SAMPLE:,} stored ones and scaled linearly to all stored records",
            "mb_per_min": round(baseline_mb_per_min, 4),
            "seconds_per_record": round(per_record, 3),
        },
        "timed": {
            "seconds": round(seconds, 2),
            "bytes": new_bytes,
            "records": new_records,
            "files": len(new_files),
            "contributions": len(new_files),
        },
        "setup": {
            "existing_records": len(stored),
            "fill_seconds": round(fill_s, 1),
            "datanet_chain_id": dn_id,
        },
        "parameters": {
            "record_chars": args.record_chars,
            "seed": args.seed,
            "index_records": len(index),
            "files_per_contribution": 1,
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out = ROOT / "benchmarks" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
