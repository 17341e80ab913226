"""Datanet access fees through the CLI on the devnet: `datanet price`, the price shown before
anything leaves (`datanet show`, `datanet export`, `train`), paying with --pay, refusals
that charge nothing and print no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openledger.cli.main import main
from openledger.node import Node
from openledger.units import OPEN
from tests.cli.test_datanets import cli_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.anvil


def balance(chain: Node, who: str) -> int:
    return chain.contracts.token.balance_of(chain.accounts.address(who))


def test_price_show_export_and_train(
    cli_env: Path,  # noqa: F811 - the fixture imported above
    chain: Node,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = cli_env / "notes.md"
    data.write_text("# Bees\n\nBees communicate the direction of flowers with a waggle dance.\n")
    for argv in (
        ["datanet", "create", "bees", "--validators", "bob", "--as", "dave"],
        ["contribute", "bees", str(data), "--stake", "10", "--as", "alice"],
        ["approve", "1", "--as", "bob"],
        ["datanet", "snapshot", "bees", "--as", "dave"],
    ):
        assert main(argv) == 0, capsys.readouterr()
    capsys.readouterr()

    # the owner prices it; above the bound is refused in one line, nothing sent
    price = ["datanet", "price", "bees", "--export", "2", "--train", "3.5", "--as", "dave"]
    assert main(price) == 0
    assert "2 OPEN per export, 3.5 OPEN per training job" in capsys.readouterr().out
    assert main(["datanet", "price", "bees", "--export", "1000.5", "--as", "dave"]) != 0
    err = capsys.readouterr().err
    assert "max_access_price" in err and "Traceback" not in err
    assert main(["datanet", "price", "bees", "--train", "1", "--as", "grace"]) != 0
    assert "Only the owner" in capsys.readouterr().err
    assert main(["datanet", "show", "bees"]) == 0
    assert "access: 2 OPEN per export, 3.5 OPEN per training job" in capsys.readouterr().out

    # grace must pay before data leaves; without --pay: the price, the fix, nothing charged
    grace = balance(chain, "grace")
    target = cli_env / "grace.jsonl"
    assert main(["datanet", "export", "bees@1", "--as", "grace", "--out", str(target)]) != 0
    captured = capsys.readouterr()
    assert "bees@1: 2 OPEN per export, due from grace" in captured.out
    assert "--pay" in captured.err and "Traceback" not in captured.err
    assert not target.exists() and balance(chain, "grace") == grace
    assert (
        main(["datanet", "export", "bees@1", "--as", "grace", "--pay", "--out", str(target)]) == 0
    )
    out = capsys.readouterr().out
    assert "paid 2 OPEN (access #1" in out and "waggle dance" in target.read_text()
    assert balance(chain, "grace") == grace - 2 * OPEN
    # a contributor exports free
    mine = cli_env / "alice.jsonl"
    assert main(["datanet", "export", "bees@1", "--as", "alice", "--out", str(mine)]) == 0
    assert "free for its contributor" in capsys.readouterr().out and mine.exists()

    # training: the price is shown before the job is queued
    base = cli_env / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    grace = balance(chain, "grace")
    assert (
        main(["train", "--datanet", "bees@1", "--base", str(base), "--as", "grace", "--detach"])
        != 0
    )
    captured = capsys.readouterr()
    assert "3.5 OPEN per training job, due from grace" in captured.out
    assert "--pay" in captured.err
    # a job that would be refused is refused before anything is paid
    assert (
        main(
            [
                "train",
                "--datanet",
                "bees@1",
                "--base",
                str(cli_env / "nothing"),
                "--as",
                "grace",
                "--pay",
                "--detach",
            ]
        )
        != 0
    )
    assert "config.json" in capsys.readouterr().err
    assert balance(chain, "grace") == grace
    assert main(["jobs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == []
    assert (
        main(
            [
                "train",
                "--datanet",
                "bees@1",
                "--base",
                str(base),
                "--as",
                "grace",
                "--pay",
                "--detach",
                "--json",
            ]
        )
        == 0
    )
    job = json.loads(capsys.readouterr().out)
    assert job["params"]["access"]["reason"] == "paid" and job["status"] == "queued"
    assert balance(chain, "grace") == grace - 7 * OPEN // 2
