"""`openledger serve` as a user runs it: a real process, uvicorn on 127.0.0.1, the devnet."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, free_port

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
        body = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert body is not None, (
            proc.stdout.read().decode() if proc.poll() is not None else "timeout"
        )
        assert body["status"] == "ok" and body["chain"]["chain_id"] == 31337
        assert body["store"]["revision"]
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run([*cli, "chain", "down"], env=env, check=True, capture_output=True)
