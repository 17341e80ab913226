"""`openledger chain deploy` to a foreign chain (a second anvil this test starts, reached only
over JSON-RPC), with an operator key brought in by `init --private-key-env` /
`--import-keystore`: the whole set with the governance handover, code checked, gas printed;
killed while a transaction is pending and resumed without a second copy of anything; bad
URLs, chain ids, passwords and an unfunded key refused with nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from eth_account import Account

from openledger.chain.addr import create_address
from openledger.chain.client import ChainClient
from openledger.chain.compile import CONTRACT_NAMES
from openledger.chain.devnet import find_anvil
from openledger.chain.head import rpc
from openledger.chain.l2fees import estimate_cost, l1_fee
from openledger.cli.main import main
from openledger.config import Settings
from tests.conftest import PASSWORD, free_port
from tests.servers import wait_until

pytestmark = pytest.mark.anvil

CHAIN_ID = 4242
CONTRACTS = len(CONTRACT_NAMES)  # the whole set, governance included


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_chainId", timeout=0.5)
        return True
    except Exception:
        return False


@pytest.fixture
def foreign(tmp_path: Path) -> Iterator[str]:
    """A second anvil: chain id 4242, no automatic mining (the test mines)."""
    port = free_port()
    anvil = find_anvil(Settings.load(env={"OPENLEDGER_HOME": str(tmp_path / "x")}))
    proc = subprocess.Popen(
        [str(anvil), "--port", str(port), "--chain-id", str(CHAIN_ID), "--no-mining"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=30, every=0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def _web_page() -> Iterator[str]:
    """An HTTP server that answers every request with a web page."""

    class Page(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body>welcome</body></html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLEDGER_")}
    return {**env, "OPENLEDGER_HOME": str(home), "OPENLEDGER_PASSWORD": PASSWORD, **extra}


def _cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openledger.cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_deploy_killed_while_a_transaction_is_pending_resumes_without_a_second_copy(
    foreign: str, tmp_path: Path
) -> None:
    key = Account.create()
    home = tmp_path / "op"
    env = _env(home, OPERATOR_KEY=key.key.hex())
    done = _cli(env, "init", "--private-key-env", "OPERATOR_KEY")
    assert done.returncode == 0 and key.address in done.stdout, done.stderr
    rpc(foreign, "anvil_setBalance", [key.address, hex(100 * 10**18)])
    addresses = home / "chain" / f"addresses-{CHAIN_ID}.json"
    journal = addresses.with_name(addresses.name + ".partial")
    argv = [
        sys.executable,
        "-m",
        "openledger.cli.main",
        "chain",
        "deploy",
        "--rpc",
        foreign,
        "--chain-id",
        str(CHAIN_ID),
        "--governance",
        "devnet",
        "--json",
    ]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pending = None
    try:

        def mine_up_to_the_fifth() -> dict | None:  # mine one transaction at a time
            txs = json.loads(journal.read_text())["txs"] if journal.exists() else {}
            waiting = [e for e in txs.values() if not e["done"]]
            if waiting and sum(e["done"] for e in txs.values()) >= 4:
                return waiting[0]  # the fifth: signed, sent, not mined
            if waiting and rpc(foreign, "eth_getTransactionByHash", [waiting[0]["hash"]]):
                rpc(foreign, "evm_mine")
            return None

        pending = wait_until(mine_up_to_the_fifth, timeout=180, fail=False)
        assert pending is not None, "the deploy never got to its fifth transaction"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not addresses.exists()  # nothing half-written
    # the node that had it in its mempool lost it: resuming must send the same bytes again
    rpc(foreign, "anvil_dropTransaction", [pending["hash"]])
    rpc(foreign, "evm_setAutomine", [True])
    resumed = _cli(
        env,
        "chain",
        "deploy",
        "--rpc",
        foreign,
        "--chain-id",
        str(CHAIN_ID),
        "--governance",
        "devnet",
        "--json",
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    doc = json.loads(resumed.stdout)
    assert len(doc["found"]) == 5 and pending["label"] in doc["found"]
    assert doc["sent"] and set(doc["sent"]).isdisjoint(doc["found"])
    assert len(doc["contracts"]) == CONTRACTS and all(g > 0 for g in doc["gas"].values())
    assert doc["total_gas"] == sum(doc["gas"].values()) and int(doc["cost_wei"]) > 0
    assert json.loads(addresses.read_text())["contracts"] == doc["contracts"]
    assert not journal.exists()
    nonce = int(rpc(foreign, "eth_getTransactionCount", [key.address, "latest"]), 16)
    created = [create_address(key.address, n) for n in range(nonce)]
    with_code = [a for a in created if rpc(foreign, "eth_getCode", [a, "latest"]) != "0x"]
    assert sorted(with_code) == sorted(doc["contracts"].values())  # one copy of each, no more
    # the handover: the Timelock owns ProtocolParams, RewardDistributor and Grants
    settings = {
        "OPENLEDGER_CHAIN_URL": foreign,
        "OPENLEDGER_CHAIN_ID": str(CHAIN_ID),
        "OPENLEDGER_ADDRESSES": str(addresses),
    }
    from openledger.node import Node

    node = Node(Settings.load(env={"OPENLEDGER_HOME": str(home), **settings}))
    tl = node.contracts.timelock.address
    assert node.contracts.params.owner() == node.contracts.rewards.owner() == tl
    assert node.contracts.grants.owner() == tl and node.contracts.params.snapshot().treasury == tl
    again = _cli(env, "chain", "deploy", "--rpc", foreign, "--chain-id", str(CHAIN_ID), "--json")
    assert json.loads(again.stdout)["already_deployed"] is True  # and nothing sent
    assert int(rpc(foreign, "eth_getTransactionCount", [key.address, "latest"]), 16) == nonce


def test_bad_chains_keys_and_funds_are_refused_with_nothing_written(
    foreign: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rpc(foreign, "evm_setAutomine", [True])
    key = Account.create()
    store = tmp_path / "key.json"
    store.write_text(json.dumps(Account.encrypt(key.key, "right", kdf="scrypt", iterations=2**14)))
    home = tmp_path / "home"
    monkeypatch.setenv("OPENLEDGER_HOME", str(home))
    monkeypatch.setenv("OPENLEDGER_PASSWORD", "wrong")
    assert main(["init", "--import-keystore", str(store), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "KeystoreError"
    assert not home.exists()  # nothing written
    monkeypatch.setenv("OPENLEDGER_PASSWORD", "right")
    assert main(["init", "--import-keystore", str(store)]) == 0
    assert key.address in capsys.readouterr().out
    assert main(["init", "--private-key-env", "NOPE_UNSET"]) == 1
    assert "NOPE_UNSET" in capsys.readouterr().err

    def deploy(*argv: str) -> dict:
        assert main(["chain", "deploy", "--json", *argv]) == 1
        return json.loads(capsys.readouterr().out)

    closed = f"http://127.0.0.1:{free_port()}"
    assert deploy("--rpc", closed, "--chain-id", str(CHAIN_ID))["error"] == "ChainUnreachableError"
    with _web_page() as page:  # an URL that answers, but is no chain
        not_rpc = deploy("--rpc", page, "--chain-id", str(CHAIN_ID))
    assert not_rpc["error"] == "ChainUnreachableError" and "not as an EVM" in not_rpc["message"]
    wrong = deploy("--rpc", foreign, "--chain-id", "10")
    assert wrong["error"] == "WrongChainError" and wrong["value"] == CHAIN_ID
    broke = deploy("--rpc", foreign, "--chain-id", str(CHAIN_ID))  # the key holds no ETH
    assert broke["error"] == "InsufficientFundsError" and key.address in broke["fix"]
    assert not (home / "chain" / f"addresses-{CHAIN_ID}.json").exists()
    # a chain without the GasPriceOracle predeploy charges no L1 data fee
    plain = ChainClient(foreign, chain_id=CHAIN_ID)
    assert l1_fee(plain, "0x" + "ff" * 100) == 0
    cost = estimate_cost(plain, {"from": key.address, "to": key.address, "data": "0x"})
    assert cost["gas"] == 21_000 and cost["l1_fee"] == "0"
    assert int(cost["total"]) == int(cost["l2_fee"]) == 21_000 * int(cost["gas_price"]) > 0
