"""CLI start-up: wall time of `openledger --help`, `--version` and three reads with the devnet
up, beside `python -c pass` (the floor every Python command pays), in one run.

A throw-away node home gets a devnet, a datanet and a deposit by grace (so `credit grace`
and `datanet list` read real rows); each command runs once untimed (the first `credit`
applies the deposit's events), then the commands take turns, RUNS times each, and the
medians are written to benchmarks/results/cli.json: ``floor_s``, ``help_s``, ``version_s``
and ``read_s`` (the slowest read's median). Targets on 2 idle cores: --help and --version
<= 0.4 s, reads <= 1.0 s.

    python benchmarks/bench_cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OPENLEDGER = str(Path(sys.executable).with_name("openledger"))
TARGETS = {"help_s": 0.4, "version_s": 0.4, "read_s": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = {
            **os.environ,
            "OPENLEDGER_HOME": str(Path(tmp) / "home"),
            "OPENLEDGER_PASSWORD": "bench",
            "OPENLEDGER_CHAIN_PORT": str(free_port()),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        env.pop("OPENLEDGER_CHAIN_URL", None)
        ol = [OPENLEDGER]
        setups = (
            ["init"],
            ["chain", "up"],
            ["datanet", "create", "bench-qa", "--validators", "bob,carol", "--as", "dave"],
            ["deposit", "25", "--as", "grace"],
        )
        for setup in setups:
            run(ol + setup, env)
        commands = {
            "floor": [sys.executable, "-c", "pass"],
            "help": ol + ["--help"],
            "version": ol + ["--version"],
            "credit NAME": ol + ["credit", "grace"],
            "datanet list": ol + ["datanet", "list"],
            "receipts list": ol + ["receipts", "list"],
        }
        try:
            first = {name: run(argv, env) for name, argv in commands.items()}  # untimed warm-up
            times: dict[str, list[float]] = {name: [] for name in commands}
            load = os.getloadavg()
            for _ in range(args.runs):
                for name, argv in commands.items():  # side by side: one of each per round
                    times[name].append(run(argv, env))
        finally:
            subprocess.run(ol + ["chain", "down"], env=env, capture_output=True, check=False)

    med = {name: round(statistics.median(t), 4) for name, t in times.items()}
    reads = ("credit NAME", "datanet list", "receipts list")
    doc = {
        "claim": "CLI start-up: --help / --version <= 0.4 s, reads with the devnet up <= 1.0 s",
        "floor_s": med["floor"],
        "help_s": med["help"],
        "version_s": med["version"],
        "read_s": max(med[r] for r in reads),
        "targets": TARGETS,
        "medians_s": med,
        "min_s": {n: round(min(t), 4) for n, t in times.items()},
        "max_s": {n: round(max(t), 4) for n, t in times.items()},
        "first_run_s": {n: round(t, 4) for n, t in first.items()},
        "runs": args.runs,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": load,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps(doc, indent=2) + "\n")
    for name in commands:
        print(
            f"{name:>14}: median {med[name]:.3f} s  (min {doc['min_s'][name]:.3f}, "
            f"max {doc['max_s'][name]:.3f}, first {doc['first_run_s'][name]:.3f})"
        )
    print(json.dumps({k: doc[k] for k in ("floor_s", "help_s", "version_s", "read_s")}))


if __name__ == "__main__":
    main()
