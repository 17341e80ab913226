"""Agents: what calling ``agent/NAME`` adds to a call, and the ledger's receipts per second
when agent receipts name the receipts of the calls they made (issue 22).

- ``agent_overhead_ms_p50``: the median, over alternating pairs, of (a POST
  /v1/chat/completions to ``agent/bench`` minus the same call to its model with the agent's
  system prompt sent as a system message): same tokens, greedy, same max_tokens, both paid
  and receipted. What is left is the agent's own work: resolving it (store reads, the
  configuration's hash, the call-graph check) and its price in the hold and the receipt.
- ``receipts_per_s_with_links``: the ledger writing agent calls that consulted two callees:
  per call two inner receipts paid by the agent's wallet, then the outer receipt with the
  agent section naming both (three receipts per call), one charge after another (each
  waits for its receipt); ``receipts_per_s_plain`` is the same harness writing plain
  receipts, for comparison. bench_ledger.py measures the concurrent writer.

An offline node (SQLite, no chain: credit and parameters as the test suite's
``offline_ledger`` sets them), the cached default tiny base with one rank-8 adapter, on CPU.
Writes benchmarks/results/agents.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

import common  # noqa: E402

PASSWORD = "bench password"
SYSTEM = "Answer in one short sentence, with facts only."
QUESTION = [{"role": "user", "content": "Where does the light of the Sun come from?"}]


def build(tmp: Path) -> tuple[Any, Any, dict[str, str]]:
    from fastapi.testclient import TestClient

    from openledger.agents.config import AgentConfig
    from openledger.app import create_app
    from openledger.ledger.credit.events import credit_row
    from openledger.store.agent_tables import AgentRow
    from tests.tiny import MODULE_SETS, make_adapter, serving_node

    base = common.tiny_base()
    adapter = make_adapter(base, tmp / "ad0", rank=8, modules=MODULE_SETS[0], seed=7)
    node = serving_node(tmp / "home", base, {"ad0": adapter}, serve_max_ctx=256)
    cfg = AgentConfig(model="ad0", system_prompt=SYSTEM, temperature=0.0, max_tokens=8)
    wallet = "0x" + "a9" * 20
    with node.db.session() as s:
        s.add(
            AgentRow(
                chain_id=1,
                name="bench",
                owner="0x" + "b0" * 20,
                model_id=1000,
                config_hash=cfg.hash(),
                config=cfg.to_json(),
                price=10**15,
                active=True,
                depth=1,
                callee_agents=[],
                callee_models=[],
                tx_hash="0x" + "00" * 32,
                wallet=wallet,
            )
        )
        row = credit_row(s, wallet)
        row.deposited = 10**30
    key = node.api_keys.create("grace", "bench", "inference")["key"]
    client = TestClient(create_app(node))
    client.headers["Authorization"] = f"Bearer {key}"
    return node, client, {"wallet": wallet}


def overhead(client: Any, pairs: int) -> dict[str, Any]:
    agent_body = {"model": "agent/bench", "messages": QUESTION}
    direct_body = {
        "model": "ad0",
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "system", "content": SYSTEM}, *QUESTION],
    }

    def timed(body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        r = client.post("/v1/chat/completions", json=body)
        dt = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        return dt, r.json()

    for _ in range(3):  # warm-up: the base, the adapter, the ledger's writer and signer
        timed(agent_body)
        timed(direct_body)
    agent_ms, direct_ms, diffs = [], [], []
    for i in range(pairs):
        order = (agent_body, direct_body) if i % 2 == 0 else (direct_body, agent_body)
        got = {id(b): timed(b) for b in order}
        (a, adoc), (d, ddoc) = got[id(agent_body)], got[id(direct_body)]
        assert adoc["usage"] == ddoc["usage"], (adoc["usage"], ddoc["usage"])  # same work
        agent_ms.append(a * 1000)
        direct_ms.append(d * 1000)
        diffs.append((a - d) * 1000)
    return {
        "pairs": pairs,
        "agent_ms_p50": round(statistics.median(agent_ms), 2),
        "model_ms_p50": round(statistics.median(direct_ms), 2),
        "agent_overhead_ms_p50": round(statistics.median(diffs), 2),
        "completion_tokens": adoc["usage"]["completion_tokens"],
        "prompt_tokens": adoc["usage"]["prompt_tokens"],
    }


def receipts_rate(node: Any, wallet: str, calls: int) -> dict[str, Any]:
    from openledger.ledger.receipts.content import AgentTerms

    ledger = node.ledger
    card = node.serving.model("ad0")
    grace = node.accounts.address("grace")
    terms = AgentTerms(1, "bench", "0x" + "b0" * 20, 10**15, "0x" + "11" * 32, wallet)
    seq = iter(range(10**9))

    def charge(payer: str, *, agent: Any = None, inner: tuple[str, ...] = ()) -> Any:
        hold = ledger.reserve(payer, card, 20, 16, agent=agent)
        hold.inner = inner
        return ledger.charge(hold, 16, request_hash=f"0x{next(seq):064x}", attribution=None)

    charge(grace)  # warm-up
    t0 = time.perf_counter()
    for _ in range(calls * 3):
        charge(grace)
    plain = calls * 3 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(calls):
        inner = (charge(wallet).hash, charge(wallet).hash)
        outer = charge(grace, agent=terms, inner=inner)
    linked = calls * 3 / (time.perf_counter() - t0)
    body = json.loads(outer.text)
    assert body["agent"]["inner"] == list(inner) and body["agent"]["wallet"] == wallet
    return {
        "agent_calls": calls,
        "receipts": calls * 3,
        "receipts_per_s_with_links": round(linked, 1),
        "receipts_per_s_plain": round(plain, 1),
    }


def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--calls", type=int, default=200, help="agent calls for the ledger figure")
    ap.add_argument("--out", type=Path, default=common.RESULTS / "agents.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node, client, info = build(Path(tmp))
        try:
            with client:
                result = {"overhead": overhead(client, args.pairs)}
                result["ledger"] = receipts_rate(node, info["wallet"], args.calls)
        finally:
            node.close()
    result["agent_overhead_ms_p50"] = result["overhead"]["agent_overhead_ms_p50"]
    result["receipts_per_s_with_links"] = result["ledger"]["receipts_per_s_with_links"]
    result["machine"] = common.machine()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
