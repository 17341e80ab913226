"""A CLI scripts can rely on: with --json stdout is exactly one JSON document, errors
included; no library warnings on stderr; names beside addresses; `accounts create` on the
devnet."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from openledger.cli.main import main
from openledger.home import init_home
from openledger.node import Node
from openledger.units import OPEN
from tests.conftest import PASSWORD


def _one_json(text: str) -> dict:
    doc, end = json.JSONDecoder().raw_decode(text.strip())
    assert text.strip()[end:] == "", f"more than one document on stdout: {text!r}"
    return doc


def test_json_errors_are_the_one_document_on_stdout(
    home,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENLEDGER_HOME", str(home.home))
    assert main(["datanet", "show", "nope", "--json"]) == 1
    captured = capsys.readouterr()
    doc = _one_json(captured.out)
    assert doc["error"] == "NotFoundError" and doc["field"] == "datanet" and doc["exit_code"] == 1
    assert doc["value"] == "nope" and doc["fix"]
    assert captured.err == ""
    assert main(["credit", "--json"]) == 2  # a usage error is JSON too
    doc = _one_json(capsys.readouterr().out)
    assert doc == {
        "error": "UsageError",
        "message": "Missing argument 'account'.",
        "fix": "see the command's --help.",
        "exit_code": 2,
    }
    assert main(["datanet", "show", "nope"]) == 1  # without --json: text on stderr
    captured = capsys.readouterr()
    assert captured.out == "" and "error:" in captured.err and "fix:" in captured.err


_WARNS = textwrap.dedent(
    """
    import sys, warnings
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    lora = LoraConfig(r=2, target_modules=["q_proj"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        get_peft_model(LlamaForCausalLM(cfg), lora)
    print(sum("is_gradient_checkpointing" in str(w.message) for w in seen))
    from openledger.cli.main import quiet_libraries
    quiet_libraries()
    get_peft_model(LlamaForCausalLM(cfg), lora)  # would print the FutureWarning to stderr
    """
)


def test_no_library_warnings_on_stderr(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _WARNS],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 1  # PEFT does raise it: the test can fail
    assert done.stderr == ""


@pytest.fixture
def cli_home(chain: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    settings = replace(chain.settings, home=home, db_url=f"sqlite:///{home / 'openledger.db'}")
    init_home(settings, PASSWORD)
    env = {
        "OPENLEDGER_HOME": str(home),
        "OPENLEDGER_PASSWORD": PASSWORD,
        "OPENLEDGER_CHAIN_PORT": str(chain.settings.chain_port),
        "OPENLEDGER_ADDRESSES": str(chain.settings.addresses_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("OPENLEDGER_CHAIN_URL", raising=False)
    return home


@pytest.mark.anvil
def test_accounts_create_makes_and_funds_an_account(
    cli_home: Path, chain: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["accounts", "create", "ivan", "--json"]) == 0
    doc = _one_json(capsys.readouterr().out)
    assert doc["name"] == "ivan" and doc["open"] == str(1_000_000 * OPEN)
    assert doc["eth"] == str(10_000 * 10**18)
    assert chain.contracts.token.balance_of(doc["address"]) == 1_000_000 * OPEN
    assert main(["deposit", "5", "--as", "ivan", "--json"]) == 0  # it signs
    assert _one_json(capsys.readouterr().out)["deposited"] == str(5 * OPEN)
    assert main(["credit", "ivan"]) == 0
    assert f"credit of ivan ({doc['address'][:6]}" in capsys.readouterr().out
    assert main(["init"]) == 0  # init rewrites the dev accounts and keeps ivan
    capsys.readouterr()
    assert main(["accounts", "create", "ivan", "--json"]) == 1
    assert _one_json(capsys.readouterr().out)["error"] == "ConflictError"
    assert main(["accounts", "create", "Not A Name"]) == 1
    assert "cannot name an account" in capsys.readouterr().err
    assert main(["accounts"]) == 0 and "ivan" in capsys.readouterr().out


@pytest.mark.anvil
def test_review_names_accounts_and_approve_names_the_datanet(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_home.parent / "bees.md"
    data.write_text("# Bees\n\nBees tell each other where flowers are with a waggle dance.\n")
    assert main(["datanet", "create", "bees", "--validators", "bob", "--as", "dave"]) == 0
    assert main(["contribute", "bees", str(data), "--stake", "10", "--as", "alice"]) == 0
    capsys.readouterr()
    assert main(["review", "bees"]) == 0
    assert " by alice (0x7099…79C8)" in capsys.readouterr().out
    assert main(["review", "bees", "--json"]) == 0
    item = _one_json(capsys.readouterr().out)["items"][0]
    assert item["contributor_name"] == "alice" and item["contributor"].startswith("0x7099")
    assert main(["approve", str(item["id"]), "--as", "bob", "--json"]) == 0
    captured = capsys.readouterr()
    doc = _one_json(captured.out)
    assert doc["datanet"] == "bees" and doc["status"] == "approved"
    assert main(["datanet", "show", "bees"]) == 0
    out = capsys.readouterr().out
    assert "owner dave (0x15d3…6A65)" in out and "validator bob (0x3C44…93BC)" in out
