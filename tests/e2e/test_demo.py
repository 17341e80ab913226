"""`make demo`'s commands as a user runs them, twice on the same home."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, free_port

pytestmark = pytest.mark.anvil


def test_demo_runs_the_lifecycle_and_is_rerunnable(tmp_path: Path) -> None:
    env = {**os.environ, "OPENLEDGER_HOME": str(tmp_path / "home"),
           "OPENLEDGER_CHAIN_PORT": str(free_port()), "OPENLEDGER_PASSWORD": PASSWORD}  # fmt: skip
    env.pop("OPENLEDGER_CHAIN_URL", None)
    cli = [sys.executable, "-m", "openledger.cli.main"]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        run("init")
        first = run("demo", "--tiny-steps", "40")
        assert "OpenToken" in first and "1000000" in first  # addresses and dev balances
        assert "refused before anything was written" in first and "near duplicate" in first
        assert "committed on chain" in first
        export = tmp_path / "home" / "exports" / "open-facts.jsonl"
        assert len(export.read_text().splitlines()) == 8
        assert "held-out perplexity" in first and "dave published 'open-facts-lora'" in first
        assert "registered the index hash" in first and "contribution #" in first
        assert (tmp_path / "home" / "exports" / "attribution.png").stat().st_size > 1000
        second = run("demo")
        assert "exists already" in second and "8 records in 1 snapshot(s)" in second
        assert "published already" in second
        assert "registered the index hash" not in second and "contribution #" in second
    finally:
        run("chain", "down")
