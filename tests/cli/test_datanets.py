"""The datanet commands end to end through the CLI on the devnet."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from openledger.cli.main import main
from openledger.home import init_home
from openledger.node import Node
from tests.conftest import PASSWORD

pytestmark = pytest.mark.anvil


@pytest.fixture
def cli_env(chain: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    settings = replace(chain.settings, home=home, db_url=f"sqlite:///{home / 'openledger.db'}")
    init_home(settings, PASSWORD)
    monkeypatch.setenv("OPENLEDGER_HOME", str(home))
    monkeypatch.setenv("OPENLEDGER_CHAIN_PORT", str(chain.settings.chain_port))
    monkeypatch.setenv("OPENLEDGER_ADDRESSES", str(chain.settings.addresses_path))
    monkeypatch.setenv("OPENLEDGER_PASSWORD", PASSWORD)
    return tmp_path


def test_lifecycle(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_env / "notes.md"
    data.write_text("# Bees\n\nBees communicate the direction of flowers with a waggle dance.\n")
    assert (
        main(
            [
                "datanet",
                "create",
                "bees",
                "--validators",
                "bob",
                "--as",
                "dave",
                "--description",
                "about bees",
            ]
        )
        == 0
    )
    assert main(["contribute", "bees", str(data), "--stake", "10", "--as", "alice"]) == 0
    assert "contribution #" in capsys.readouterr().out
    assert main(["review", "bees"]) == 0
    assert "waggle dance" in capsys.readouterr().out
    assert main(["review", "bees", "--json"]) == 0
    cid = json.loads(capsys.readouterr().out)["items"][0]["id"]
    assert main(["approve", str(cid), "--as", "bob"]) == 0
    assert "approved" in capsys.readouterr().out
    assert main(["datanet", "snapshot", "bees", "--as", "dave"]) == 0
    out_file = cli_env / "bees.jsonl"
    assert main(["datanet", "export", "bees@1", "--format", "jsonl", "--out", str(out_file)]) == 0
    assert "waggle dance" in out_file.read_text()
    assert main(["datanet", "show", "bees"]) == 0
    assert "snapshot @1" in capsys.readouterr().out


def test_errors_are_one_line(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = cli_env / "x.jsonl"
    bad.write_text('{"text": "a"}\n{nope}\n')
    assert main(["datanet", "create", "b2", "--validators", "bob", "--as", "dave"]) == 0
    capsys.readouterr()
    assert main(["contribute", "b2", str(bad), "--stake", "10", "--as", "alice"]) != 0
    err = capsys.readouterr().err
    assert "x.jsonl line 2" in err and "Traceback" not in err
    assert main(["contribute", "b2", str(bad), "--stake", "lots", "--as", "alice"]) != 0
    assert "--stake" in capsys.readouterr().err
    assert main(["stake", "withdraw", "999", "--as", "alice"]) != 0
    assert "No contribution #999" in capsys.readouterr().err
