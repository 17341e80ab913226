"""`make demo`'s commands as a user runs them, twice on the same home."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, free_port

pytestmark = pytest.mark.anvil


def test_demo_runs_the_lifecycle_and_is_rerunnable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OPENLEDGER_HOME": str(tmp_path / "home"),
        "OPENLEDGER_CHAIN_PORT": str(free_port()),
        "OPENLEDGER_PASSWORD": PASSWORD,
    }
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
        assert "heidi contributed insects-qa.csv: 5 record(s)" in first
        assert "rejected; slashed 10 OPEN (50% of the stake" in first
        assert "balance is down exactly the slashed 10 OPEN" in first
        assert "committed on chain" in first
        export = tmp_path / "home" / "exports" / "open-facts.jsonl"
        assert len(export.read_text().splitlines()) == 13  # alice 5, erin 3, heidi 5
        assert "none held out" in first and "dave published 'open-facts-lora'" in first
        assert "registered the index hash" in first and "contribution #" in first
        assert "OpenLoRA engine" in first and "deposited 10 OPEN" in first
        assert first.count("signed; attribution:") == 9 and "epoch 1 settled: 10 receipts" in first
        # carol runs a compute provider: governance sets the share, she pulls, stakes and serves
        assert "passed: compute_share_bps = 500" in first
        assert "carol pulled open-facts-lora from this node" in first
        assert "staked 100 OPEN and registered as a compute provider" in first
        assert first.count(", served by carol, fee") == 9
        # the agent: dave's, over his model, retrieving from the datanet; grace pays its price
        assert "dave created agent/research-assistant (AgentRegistry #1)" in first
        assert "top 2 passages of open-facts's latest snapshot" in first
        assert "dave funded its wallet with 1 OPEN of credit" in first
        assert "grace → agent/research-assistant: 'How long does light" in first
        assert "  [1] " in first and "open-facts@1 record" in first and "(erin)" in first
        assert "the agent's price 0.05 (to dave)" in first
        assert "names the 2 record(s) retrieved" in first
        # data access fees: dave prices the datanet, grace (no contributor) pays to export it
        assert "dave (the owner) priced open-facts: 2 OPEN per snapshot export" in first
        assert "grace paid 2 OPEN to export open-facts@1 (access #1" in first
        assert "epoch 1 settled: 10 receipts and 1 access fee(s)" in first
        paid = tmp_path / "home" / "exports" / "open-facts-grace.jsonl"
        assert paid.read_text() == export.read_text()
        assert "(chat)" in first and "answers holding the key fact" in first
        assert "fast-forwarded the chain clock" in first and "epoch 1: 10 receipts" in first
        for who in ("alice", "erin", "heidi", "dave", "Timelock"):
            assert f"{who} claimed " in first
        assert "sent by operator on its behalf" in first  # the Timelock is the treasury
        table = first[first.index("OPEN by account") :]
        assert "OPEN slashed" in table and "#4 rejected" in table
        assert "model + datanet owner" in table
        # by where it came from: dave's agent fees next to his and the contributors' fees
        by = table[table.index("by where it came from") :]
        assert "inference fees" in by and "access fees" in by and "agent fees" in by
        dave = next(line for line in by.splitlines() if line.startswith("│ dave "))
        assert dave.split("│")[4].strip() == "0.05"  # his agent's price, one call
        carol = next(line for line in by.splitlines() if line.startswith("│ carol "))
        assert float(carol.split("│")[5].strip()) > 0  # her compute share
        assert "Agent fees: the price per call" in first
        assert "check passed" in first
        assert "`openledger verify receipt rc_" in first and ": match — the index" in first
        assert "--attribution`: 10 of 10 receipts recomputed, every one matches" in first
        for png in ("attribution.png", "earnings.png"):
            assert (tmp_path / "home" / "exports" / png).stat().st_size > 1000
        second = run("demo")
        assert "exists already" in second and "13 records in 1 snapshot(s)" in second
        assert "skipping contribution, review and snapshot" in second
        assert "published already" in second
        assert "registered the index hash" not in second and "contribution #" in second
        assert "credit 9." in second  # the first run's unspent credit, then 10 more
        assert "epoch 2 settled: 10 receipts" in second and "check passed" in second
        assert "agent/research-assistant exists already" in second
        assert "carol is a registered compute provider already" in second
        assert "compute_share_bps = 500" not in second and ", served by carol" in second
        assert "funded its wallet" not in second  # it made no calls: its credit is whole
        assert "grace → agent/research-assistant" in second
        assert "grace paid for open-facts@1 already (access #1)" in second
        assert "epoch 2 settled: 10 receipts and" not in second  # that fee settled in epoch 1
        assert "--attribution`: 10 of 10 receipts recomputed, every one matches" in second
        assert "alice claimed " in second and "#4 rejected" in second
    finally:
        run("chain", "down")
