"""`openledger serve` as a user runs it: a real process, uvicorn on 127.0.0.1, the devnet."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, free_port
from tests.servers import wait_until

pytestmark = pytest.mark.anvil


def test_serve_answers_health_and_docs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OPENLEDGER_HOME": str(tmp_path / "home"),
        "OPENLEDGER_CHAIN_PORT": str(free_port()),
        "OPENLEDGER_PASSWORD": PASSWORD,
    }
    env.pop("OPENLEDGER_CHAIN_URL", None)
    cli = [sys.executable, "-m", "openledger.cli.main"]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def health() -> dict | None:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode())
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.HTTPError:
                return None

        body = wait_until(health, timeout=90, every=0.3)
        assert body["status"] == "ok" and body["chain"]["chain_id"] == 31337
        assert body["store"]["revision"]
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run([*cli, "chain", "down"], env=env, check=True, capture_output=True)
