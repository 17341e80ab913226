"""`openledger gov …`, `delegate` and `grants …` on the devnet: bad input refused with the
numbers before anything is sent, then the whole path through the CLI."""

from __future__ import annotations

import json

import pytest

from openledger.chain.deploy import DEVNET_GOVERNANCE as CFG
from openledger.cli.main import main
from openledger.governance.devnet import advance_devnet_clock
from openledger.node import Node
from tests.conftest import PASSWORD

pytestmark = pytest.mark.anvil


@pytest.fixture
def cli(chain: Node, monkeypatch: pytest.MonkeyPatch) -> Node:
    s = chain.settings
    for key, value in {
        "OPENLEDGER_HOME": str(s.home),
        "OPENLEDGER_DB_URL": s.db_url,
        "OPENLEDGER_CHAIN_PORT": str(s.chain_port),
        "OPENLEDGER_PASSWORD": PASSWORD,
        "OPENLEDGER_ADDRESSES": str(s.addresses_path),
    }.items():
        monkeypatch.setenv(key, value)
    return chain


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict | list:
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


def test_gov_path_and_bad_input(cli: Node, capsys: pytest.CaptureFixture[str]) -> None:
    # the devnet was handed to governance at deploy: `gov handover` only funds the treasury
    done = run(capsys, ["gov", "handover", "--fund", "100000"])["done"]
    assert done == [f"moved {100_000 * 10**18} wei of OPEN to the Timelock"]
    keys = run(capsys, ["gov", "keys"])
    assert keys["handed_over"] and keys["keys"]["platform_bps"]["value"] == "1000"
    assert keys["keys"]["voting_period"]["value"] == str(CFG.voting_period)
    assert keys["keys"]["max_access_price"]["value"] == str(1_000 * 10**18)
    assert keys["keys"]["compute_share_bps"]["value"] == "0"
    err = fails(capsys, ["gov", "propose", "--set", "platform_bps=600", "--as", "operator"])
    assert "sum to 9600 bps" in err and "+400 bps" in err
    err = fails(capsys, ["gov", "propose", "--set", "fee=1", "--as", "operator"])
    assert "'fee' is not a governable key" in err
    err = fails(capsys, ["gov", "propose", "--set", "slash_bps=150%", "--as", "operator"])
    assert "slash_bps=150%: out of range" in err
    err = fails(capsys, ["gov", "propose", "--set", "slash_bps=20%", "--as", "operator"])
    assert "0 OPEN of delegated votes" in err and "openledger delegate" in err
    assert cli.contracts.governor.proposal_count() == 0  # nothing was sent

    d = run(capsys, ["delegate", "operator", "--as", "operator"])
    assert int(d["votes"]) == int(d["balance"]) > 0
    advance_devnet_clock(cli.client, 1)
    doc = run(
        capsys,
        ["gov", "propose", "--set", "slash_bps=20%", "--description", "milder", "--as", "operator"],
    )
    pid = doc["id"]
    assert doc["calls"] == ["ProtocolParams.setParam(slash_bps, 2000)"]
    err = fails(capsys, ["gov", "vote", str(pid), "for", "--as", "operator"])
    assert "opens after its snapshot" in err
    t0 = cli.client.timestamp()
    moved = run(capsys, ["chain", "advance", f"{CFG.voting_delay + 1}s"])  # by hand, as a person
    assert moved["seconds"] == CFG.voting_delay + 1 and moved["timestamp"] >= t0 + moved["seconds"]
    err = fails(capsys, ["gov", "vote", str(pid), "for", "--as", "bob"])
    assert "no delegated votes" in err and "openledger delegate" in err
    err = fails(capsys, ["gov", "vote", str(pid), "maybe", "--as", "operator"])
    assert "'maybe' is not a vote" in err
    assert run(capsys, ["gov", "vote", str(pid), "for", "--as", "operator"])["voted"] == "for"
    assert main(["chain", "advance", "10m"]) == 0  # the devnet's voting period
    assert "devnet clock moved 600 s forward" in capsys.readouterr().out
    err = fails(capsys, ["gov", "vote", str(pid), "for", "--as", "alice"])
    assert "voting period ended" in err
    assert run(capsys, ["gov", "queue", str(pid)])["state"] == "queued"
    assert "s from now" in fails(capsys, ["gov", "execute", str(pid)])
    run(capsys, ["chain", "advance", str(CFG.timelock_delay)])
    assert run(capsys, ["gov", "execute", str(pid), "--as", "carol"])["state"] == "executed"
    assert cli.contracts.params.get("slash_bps") == 2000
    assert [p["id"] for p in run(capsys, ["gov", "list"])] == [pid]
    assert main(["gov", "show", str(pid)]) == 0
    assert "executed" in capsys.readouterr().out
    assert "No proposal 9" in fails(capsys, ["gov", "show", "9"])


def test_chain_advance_is_devnet_only(
    cli: Node, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = cli.client.timestamp()
    err = fails(capsys, ["chain", "advance", "soon"])
    assert "DURATION=soon: not a duration" in err and "15m, 6h" in err
    assert "out of range" in fails(capsys, ["chain", "advance", "0"])
    # the same anvil named as an external chain (OPENLEDGER_CHAIN_URL): refused, not moved
    monkeypatch.setenv("OPENLEDGER_CHAIN_URL", cli.settings.rpc_url)
    err = fails(capsys, ["chain", "advance", "1h"])
    assert "is not the embedded devnet; only the devnet's clock can be moved" in err
    assert "wait for the time to pass" in err
    assert cli.client.timestamp() < t0 + 3_600


def test_grants_cli(cli: Node, capsys: pytest.CaptureFixture[str]) -> None:
    err = fails(
        capsys,
        [
            "grants",
            "apply",
            "--tier",
            "building",
            "--amount",
            "40000",
            "--milestones",
            "40000",
            "--as",
            "erin",
        ],
    )
    assert "40000 OPEN is outside the building tier's bounds (50000 to 150000 OPEN)" in err
    err = fails(
        capsys,
        [
            "grants",
            "apply",
            "--tier",
            "building",
            "--amount",
            "60000",
            "--milestones",
            "20000,30000",
            "--as",
            "erin",
        ],
    )
    assert "sum to 50000 OPEN, the amount is 60000 OPEN" in err
    err = fails(
        capsys,
        ["grants", "apply", "--tier", "huge", "--amount", "1", "--milestones", "1", "--as", "erin"],
    )
    assert "'huge' is not a grant tier" in err
    g = run(
        capsys,
        [
            "grants",
            "apply",
            "--tier",
            "building",
            "--amount",
            "60000",
            "--milestones",
            "20000,40000",
            "--uri",
            "ipfs://plan",
            "--as",
            "erin",
        ],
    )
    assert (g["id"], g["status"], g["tier"]) == (1, "pending", "building")
    listing = run(capsys, ["grants", "list"])
    assert [t["name"] for t in listing["tiers"]] == ["exploration", "building", "expansion"]
    assert run(capsys, ["grants", "show", "1"])["milestones"] == [
        str(20_000 * 10**18),
        str(40_000 * 10**18),
    ]
    assert run(capsys, ["grants", "cancel", "1", "--as", "erin"])["status"] == "cancelled"
    assert "is cancelled, not pending" in fails(capsys, ["grants", "approve", "1", "--as", "erin"])
