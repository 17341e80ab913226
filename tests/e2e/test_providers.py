"""One gateway and two compute providers on this machine, each an `openledger serve`
process with its own home and key, on one chain (the devnet): the providers pull the model
from the gateway (checked against ModelRegistry), register with a stake, and serve the
gateway's jobs; 64 paid requests spread over both; each provider earns exactly its
receipts' compute shares, and the epoch's audit checks every provider statement. A provider
killed before a request fails over to the other; one killed mid-stream ends that stream
with an error and charges nothing; with none left, a request is refused and charged
nothing."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from openledger.governance.devnet import as_timelock
from openledger.home import init_home
from openledger.node import Node
from openledger.store.factory_tables import ModelRow
from openledger.store.ledger_tables import ReceiptRow
from openledger.units import OPEN
from tests.conftest import PASSWORD, free_port
from tests.market import deposit, make_operator
from tests.servers import serve_process, wait_healthy
from tests.tiny import register_models

pytestmark = pytest.mark.anvil

MODEL = "facts-lora"
PRICE_IN, PRICE_OUT = 20 * OPEN, 30 * OPEN  # wei per 1,000 tokens
COMPUTE_BPS = 500  # 5 % of each fee, out of the platform's 10 %
BODY = {"model": MODEL, "prompt": "Bees make", "max_tokens": 4, "ignore_eos": True}


def _home(chain: Node, root: Path, key: str | None = None) -> Node:
    settings = replace(
        chain.settings,
        home=root,
        db_url=f"sqlite:///{root / 'openledger.db'}",
        addresses_file=chain.settings.addresses_path,
        serve_device="cpu",
        serve_max_ctx=64,
    )
    init_home(settings, PASSWORD, private_key=key)
    return Node(settings, password_source=lambda: PASSWORD)


def _serve(node: Node, port: int, log: Path, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "OPENLEDGER_HOME": str(node.settings.home),
        "OPENLEDGER_DB_URL": node.settings.db_url,
        "OPENLEDGER_CHAIN_URL": node.settings.rpc_url,
        "OPENLEDGER_CHAIN_ID": str(node.settings.chain_id),
        "OPENLEDGER_ADDRESSES": str(node.settings.addresses_path),
        "OPENLEDGER_SERVE_DEVICE": "cpu",
        "OPENLEDGER_SERVE_MAX_CTX": "64",
        "OPENLEDGER_SYNC_DEPTH": "0",
        "OPENLEDGER_PASSWORD": PASSWORD,
    }
    return serve_process(env, port, log, *extra)


def test_a_gateway_routes_paid_requests_to_two_providers(
    chain: Node, tiny_base_dir: Path, adapters_dir: Path, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        gw = _home(chain, tmp_path / "gateway")
        stack.callback(gw.close)
        make_operator(chain, gw)
        acc = gw.accounts
        params = chain.contracts.params.contract.functions
        as_timelock(chain.contracts, params.setParam("compute_share_bps", COMPUTE_BPS))
        # the model, registered on chain with its adapter's real hash
        adapter = adapters_dir / "ad3"
        sha = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
        model_id, _ = gw.contracts.models.register_model(
            acc.signer("dave"),
            str(tiny_base_dir),
            bytes.fromhex(sha),
            [],
            b"\0" * 32,
            PRICE_IN,
            PRICE_OUT,
            "",
        )
        register_models(
            gw.db,
            str(tiny_base_dir),
            {MODEL: adapter},
            owner=acc.address("dave"),
            price_in=PRICE_IN,
            price_out=PRICE_OUT,
            first_id=model_id,
        )
        with gw.db.session() as s:
            s.execute(update(ModelRow).values(adapter_sha=sha))
        deposit(gw, "grace", 100 * OPEN)
        key = gw.api_keys.create("grace", "providers")["key"]
        auth = {"Authorization": f"Bearer {key}"}

        gport = free_port()
        gurl = f"http://127.0.0.1:{gport}"
        gproc = _serve(gw, gport, tmp_path / "gateway.log")
        stack.callback(gproc.wait, 30)
        stack.callback(gproc.terminate)
        wait_healthy(gurl, gproc, tmp_path / "gateway.log")

        # two providers: own homes and keys (funded by alice), pull, register, serve
        providers: dict[str, dict] = {}
        for name in ("p1", "p2"):
            pkey = "0x" + hashlib.sha256(f"provider {name}".encode()).hexdigest()
            node = _home(chain, tmp_path / name, pkey)
            stack.callback(node.close)
            address = node.accounts.operator_address()
            chain.client.rpc("anvil_setBalance", [address, hex(10 * 10**18)])
            chain.contracts.token.transfer(chain.accounts.signer("alice"), address, 200 * OPEN)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            doc = node.providers.register(
                node.accounts.signer("operator"),
                url,
                [node.providers.pull(gurl, [MODEL])[0]["name"]],
                100 * OPEN,
            )
            assert doc["active"] and doc["model_ids"] == [model_id]
            node.provider_serving.close()  # the check's engine; the process serves now
            log = tmp_path / f"{name}.log"
            proc = _serve(node, port, log, "--provider", "--gateway", acc.operator_address())
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            providers[address] = {"name": name, "proc": proc, "url": url, "log": log}
        for p in providers.values():
            wait_healthy(p["url"], p["proc"], p["log"], "/provider/health")

        # 64 paid requests spread over both providers
        def call(_: int) -> dict:
            r = httpx.post(f"{gurl}/v1/completions", json=BODY, headers=auth, timeout=120)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(8) as pool:
            paid = list(pool.map(call, range(64)))
        receipts = [
            httpx.get(f"{gurl}/receipts/{p['receipt_id']}", headers=auth, timeout=30).json()[
                "receipt"
            ]
            for p in paid
        ]
        by_provider: dict[str, list[dict]] = {a: [] for a in providers}
        for body in receipts:
            by_provider[body["compute"]["provider"]].append(body)
        counts = {providers[a]["name"]: len(v) for a, v in by_provider.items()}
        print(f"64 paid requests: {counts}")
        assert all(n > 0 for n in counts.values()) and sum(counts.values()) == 64
        for address, bodies in by_provider.items():
            shares = [
                int(p["amount"]) for b in bodies for p in b["payouts"] if p["role"] == "compute"
            ]
            assert len(shares) == len(bodies)
            assert all(
                s == int(b["fee"]) * COMPUTE_BPS // 10_000
                for s, b in zip(shares, bodies, strict=True)
            )
            assert gw.rewards.earnings(address)["by_role"] == {"compute": str(sum(shares))}

        # p2 dies: requests fail over to p1 and are charged once each
        p2 = next(a for a, p in providers.items() if p["name"] == "p2")
        p1 = next(a for a in providers if a != p2)
        providers[p2]["proc"].send_signal(signal.SIGKILL)
        providers[p2]["proc"].wait(10)
        after = [call(i) for i in range(4)]
        bodies = [
            httpx.get(f"{gurl}/receipts/{p['receipt_id']}", headers=auth, timeout=30).json()[
                "receipt"
            ]
            for p in after
        ]
        assert {b["compute"]["provider"] for b in bodies} == {p1}

        def charged() -> int:
            with gw.db.session() as s:
                return len(s.scalars(select(ReceiptRow.seq)).all())

        before = charged()
        # p1 dies mid-stream: the stream ends with an error, nothing is charged
        stream = {**BODY, "max_tokens": 48, "stream": True}
        with httpx.stream(
            "POST", f"{gurl}/v1/completions", json=stream, headers=auth, timeout=120
        ) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert json.loads(first[6:])["choices"]
            providers[p1]["proc"].send_signal(signal.SIGKILL)
            rest = [line for line in lines if line.startswith("data: ")]
        assert rest and "error" in json.loads(rest[-1][6:]), rest[-3:]
        # with no provider left, a request is refused
        refused = httpx.post(f"{gurl}/v1/completions", json=BODY, headers=auth, timeout=120)
        assert refused.status_code == 502, refused.text
        assert charged() == before

        # one epoch settles them all; its audit checks every provider's statement
        gproc.terminate()
        gproc.wait(30)
        assert gw.epochs.close()["epoch"] == 1
        report = gw.auditor.audit(1)
        assert report.ok, report.problems
        assert report.receipts == 68
