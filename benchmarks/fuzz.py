"""`make fuzz`: schemathesis over the whole OpenAPI schema, longer than the suite's run,
against a node on a fresh devnet with the operator token; writes
benchmarks/results/fuzz.json (cases, endpoints, server_errors, schema_violations), or --out.
A quick look: `benchmarks/fuzz.py --examples 4 --budget 60 --out /tmp/fuzz.json`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from openledger.app import create_app  # noqa: E402
from openledger.home import init_home  # noqa: E402
from openledger.node import Node  # noqa: E402
from openledger.units import OPEN  # noqa: E402
from tests.api.fuzzing import CHECKS, MODES, SEED, fuzz  # noqa: E402
from tests.conftest import make_settings, operator_headers  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--examples",
        type=int,
        default=120,
        help="cases per operation and generation mode (positive, negative)",
    )
    ap.add_argument("--budget", type=float, default=1500.0, help="seconds")
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "fuzz.json",
        help="where the report goes (a quick run, e.g. --examples 4 --budget 60, belongs "
        "elsewhere than the README's figures)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp) / "home")
        init_home(settings, "fuzz")
        node = Node(settings, password_source=lambda: "fuzz")
        node.chain_up()
        try:
            acc = node.accounts
            node.datanets.create(
                "facts",
                description="fuzzing",
                validators=[acc.address("bob")],
                quorum=1,
                min_stake=10 * OPEN,
                signer=acc.signer("dave"),
            )
            report = fuzz(
                create_app(node),
                operator_headers(node),
                examples=args.examples,
                budget_s=args.budget,
            )
        finally:
            node.devnet.down()
            node.close()
    doc = {
        **report.to_dict(),
        "examples_per_operation_and_mode": args.examples,
        "seed": SEED,
        "modes": [m.value for m in MODES],
        "checks": [c.__name__ for c in CHECKS],
        "load_average": os.getloadavg()[0],
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: doc[k]
                for k in (
                    "cases",
                    "endpoints",
                    "fuzzed",
                    "server_errors",
                    "schema_violations",
                    "seconds",
                )
            }
        )
    )


if __name__ == "__main__":
    main()
