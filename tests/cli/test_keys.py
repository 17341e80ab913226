"""`openledger keys create|list|revoke`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openledger.cli.main import main
from tests.conftest import PASSWORD, free_port


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("OPENLEDGER_HOME", str(home))
    monkeypatch.setenv("OPENLEDGER_CHAIN_PORT", str(free_port()))
    monkeypatch.setenv("OPENLEDGER_PASSWORD", PASSWORD)
    monkeypatch.delenv("OPENLEDGER_CHAIN_URL", raising=False)
    assert main(["init"]) == 0
    capsys.readouterr()
    return home


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_create_prints_the_key_once(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--as", "alice", "--label", "laptop"]) == 0
    out = capsys.readouterr().out
    key = next(line for line in out.splitlines() if line.startswith("olk_"))
    assert "not shown again" in out and "alice" in out
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key[:12] in listing and "laptop" in listing and key not in listing


def test_create_list_revoke_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alice = _json(capsys, ["keys", "create", "--as", "alice", "--json"])
    bob = _json(capsys, ["keys", "create", "--as", "bob", "--label", "ci", "--json"])
    assert alice["key"].startswith("olk_") and alice["account"] == "alice"
    items = _json(capsys, ["keys", "list", "--json"])
    assert [k["key_id"] for k in items] == [alice["key_id"], bob["key_id"]]
    assert all("key" not in k for k in items)
    assert [k["label"] for k in _json(capsys, ["keys", "list", "--as", "bob", "--json"])] == ["ci"]

    assert main(["keys", "revoke", bob["key_id"]]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", bob["key_id"]]) == 0  # again: no change, no error
    capsys.readouterr()
    items = _json(capsys, ["keys", "list", "--json"])
    assert items[0]["revoked"] is None and items[1]["revoked"] is not None


def test_unknown_account_and_key_are_clear_errors(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--as", "mallory"]) == 1
    err = capsys.readouterr().err
    assert "mallory" in err and "openledger accounts" in err and "Traceback" not in err
    assert main(["keys", "revoke", "olk_nothere0"]) == 1
    err = capsys.readouterr().err
    assert "olk_nothere0" in err and "openledger keys list" in err


def test_the_service_field_is_said_as_the_command_flag(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service names the field `account`; `keys create` takes it as --as."""
    assert main(["keys", "create", "--as", "mallory", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"] == "NotFoundError" and doc["field"] == "--as"
    assert doc["value"] == "mallory" and "openledger accounts" in doc["fix"]
    assert main(["keys", "revoke", "olk_nothere0", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["field"] == "key_id" and "openledger keys list" in doc["fix"]
    assert main(["keys", "create", "--as", "mallory"]) == 1  # text: the option before it
    assert capsys.readouterr().err.startswith("error: --as: No account named 'mallory'")
