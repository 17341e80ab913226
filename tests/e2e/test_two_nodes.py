"""Two `openledger serve` processes on one PostgreSQL database, one S3 bucket (moto's server)
and one chain (the devnet, reached as any JSON-RPC chain), sharing the operator key (node B
was initialised with `init --import-keystore` of A's): a contribution made through node A
is reviewed through node B; each node takes payments; 64 paid requests spread over both
never spend more than a small deposit; one epoch, closed from both nodes at once, settles
every receipt exactly once and its audit passes."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openledger.config import Settings
from openledger.home import init_home
from openledger.ledger.credit.leases import IDLE_RETURN_S, RENEW_S
from openledger.node import Node
from openledger.store.ledger_tables import ReceiptRow
from openledger.units import OPEN
from tests.conftest import PASSWORD, free_port, operator_headers
from tests.market import deposit, make_operator
from tests.s3 import make_bucket, s3_server
from tests.servers import serve_process, wait_healthy
from tests.store.conftest import pg_url  # noqa: F401 - fixture
from tests.tiny import register_models

pytestmark = [pytest.mark.anvil, pytest.mark.postgres]

MODEL = "facts-lora"
PRICE_IN = 20 * OPEN + 7  # wei per 1,000 tokens: about 0.2 OPEN a request
PRICE_OUT = 30 * OPEN + 11
SMALL = 2 * OPEN  # heidi's deposit: a handful of requests
PROMPT = "Bees make"


def fee(prompt_tokens: int, completion_tokens: int) -> int:
    return -(-(prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) // 1000)


def test_two_serve_processes_on_one_database_bucket_and_chain(
    chain: Node,
    tiny_base_dir: Path,
    adapters_dir: Path,
    pg_url: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ExitStack() as stack:
        s3 = stack.enter_context(s3_server())
        make_bucket(s3, "ledger")
        for k, v in s3.items():
            monkeypatch.setenv(k, v)
        shared = {
            "OPENLEDGER_DB_URL": pg_url,
            "OPENLEDGER_BLOBS_URL": "s3://ledger/prod",
            "OPENLEDGER_CHAIN_URL": chain.settings.rpc_url,
            "OPENLEDGER_CHAIN_ID": str(chain.settings.chain_id),
            "OPENLEDGER_ADDRESSES": str(chain.settings.addresses_path),
            "OPENLEDGER_SYNC_DEPTH": "0",
            "OPENLEDGER_SERVE_DEVICE": "cpu",
            "OPENLEDGER_SERVE_MAX_CTX": "64",
            "OPENLEDGER_PASSWORD": PASSWORD,
        }
        envs = {n: {**shared, "OPENLEDGER_HOME": str(tmp_path / n)} for n in ("a", "b")}
        settings = {n: Settings.load(env=e) for n, e in envs.items()}
        init_home(settings["a"], PASSWORD)
        init_home(settings["b"], PASSWORD, keystore_file=settings["a"].layout.operator_keystore)
        nodes = {n: Node(s, password_source=lambda: PASSWORD) for n, s in settings.items()}
        for node in nodes.values():
            stack.callback(node.close)
        a, b = nodes["a"], nodes["b"]
        assert a.accounts.operator_address() == b.accounts.operator_address()
        make_operator(chain, a)  # the shared operator key settles on this chain
        acc = a.accounts
        a.datanets.create(
            "facts",
            description="",
            validators=[acc.address("bob")],
            quorum=1,
            min_stake=10 * OPEN,
            signer=acc.signer("dave"),
        )
        register_models(
            a.db,
            str(tiny_base_dir),
            {MODEL: adapters_dir / "ad3"},
            owner=acc.address("dave"),
            price_in=PRICE_IN,
            price_out=PRICE_OUT,
            first_id=1,
        )
        deposit(a, "heidi", SMALL)
        deposit(a, "grace", SMALL)
        keys = {w: a.api_keys.create(w, "two nodes")["key"] for w in ("heidi", "grace")}

        ports = {n: free_port() for n in nodes}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        procs = {}
        for n in nodes:
            env = {**os.environ, **envs[n]}
            procs[n] = serve_process(env, ports[n], tmp_path / f"serve-{n}.log")
            stack.callback(procs[n].wait, 30)
            stack.callback(procs[n].terminate)
        for n in nodes:
            wait_healthy(urls[n], procs[n], tmp_path / f"serve-{n}.log")

        # a contribution made through node A (its file goes to the bucket) is reviewed
        # through node B
        files = [
            ("files", ("bees.txt", b"Bees make honey from the nectar of flowers.", "text/plain"))
        ]
        made = httpx.post(
            f"{urls['a']}/datanets/facts/contributions",
            files=files,
            data={"stake": "10", "as": "alice"},
            headers=operator_headers(a),
            timeout=60,
        )
        assert made.status_code == 201, made.text
        cid = made.json()["contribution_id"]
        reviewed = httpx.post(
            f"{urls['b']}/datanets/facts/contributions/{cid}/reviews",
            json={"approve": True, "as": "bob"},
            headers=operator_headers(b),
            timeout=60,
        )
        assert reviewed.status_code == 200, reviewed.text
        shown = httpx.get(f"{urls['a']}/datanets/facts/contributions/{cid}", timeout=30).json()
        assert shown["status"] == "approved"
        assert list(b.blobs.iter_hashes()) == list(a.blobs.iter_hashes()) != []

        # each node takes a payment (grace's, with API keys kept in the shared database);
        # this also loads both engines before the race below
        body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 4, "ignore_eos": True}
        warm = []
        for n in nodes:
            r = httpx.post(
                f"{urls[n]}/v1/completions",
                json=body,
                timeout=120,
                headers={"Authorization": f"Bearer {keys['grace']}"},
            )
            assert r.status_code == 200, r.text
            warm.append(r.json())

        # 64 paid requests spread over both nodes, against a deposit that covers a handful
        auth = {"Authorization": f"Bearer {keys['heidi']}"}
        lock = threading.Lock()
        paid: list[dict[str, Any]] = []
        refused = {"a": 0, "b": 0}

        def call(n: str) -> int:
            r = httpx.post(f"{urls[n]}/v1/completions", json=body, headers=auth, timeout=120)
            if r.status_code == 402:
                assert r.json()["error"]["code"] == "insufficient_quota"
                with lock:
                    refused[n] += 1
            else:
                assert r.status_code == 200, r.text
                with lock:
                    paid.append({"node": n, **r.json()})
            return r.status_code

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(call, ["a", "b"] * 32))
        assert refused["a"] + refused["b"] > 0  # the deposit ran out
        usage = paid[0]["usage"]
        each = fee(usage["prompt_tokens"], usage["completion_tokens"])
        assert all(p["usage"] == usage for p in paid + warm)
        assert len(paid) * each <= SMALL  # never more than the deposit
        # what a node leased and did not use goes back (a lease idle for IDLE_RETURN_S, at
        # the next renewal): once both refuse after that, the deposit is spent to the last
        # whole request
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(IDLE_RETURN_S + RENEW_S + 0.5)
            if call("a") == 402 and call("b") == 402:
                break
        assert len(paid) == SMALL // each

        # the books: one receipt per paid request, one hash chain, the credit debited exactly
        ids = [p["receipt_id"] for p in warm + paid]
        docs = [
            httpx.get(f"{urls['b' if i % 2 else 'a']}/receipts/{rid}", timeout=30).json()
            for i, rid in enumerate(ids)
        ]
        docs.sort(key=lambda d: d["seq"])
        assert [d["seq"] for d in docs] == list(range(1, len(ids) + 1))
        assert [d["prev"] for d in docs[1:]] == [d["hash"] for d in docs[:-1]]
        heidis = [d for d in docs if d["receipt"]["payer"] == acc.address("heidi")]
        assert len(heidis) == len(paid)
        assert sum(int(d["receipt"]["fee"]) for d in heidis) == len(paid) * each
        a.sync_chain()
        credit = a.ledger.credit(acc.address("heidi"))
        assert int(credit["available"]) == SMALL - len(paid) * each < each

        # one epoch, closed by both nodes at once, settles them all exactly once
        for n in nodes:
            procs[n].terminate()
            procs[n].wait(30)
        with ThreadPoolExecutor(2) as pool:
            closed = list(pool.map(lambda node: node.epochs.close(), [a, b]))
        assert sorted(str(c.get("epoch")) for c in closed) in (["1", "1"], ["1", "None"])
        assert b.epochs.close()["status"] == "nothing to settle"
        with a.db.session() as s:
            epochs = set(s.scalars(select(ReceiptRow.epoch)))
        assert epochs == {1}
        report = b.auditor.audit(1)
        assert report.ok, report.problems
        assert report.receipts == len(ids) and report.root == report.chain_root
