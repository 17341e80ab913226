"""train / jobs / model through the CLI, with a YAML training config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openledger.cli.main import main
from tests.conftest import PASSWORD, World
from tests.factory.test_jobs import FAST, learnable_snapshot

pytestmark = pytest.mark.anvil


@pytest.fixture
def cli_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    s = world.node.settings
    for key, value in {
        "OPENLEDGER_HOME": str(s.home),
        "OPENLEDGER_DB_URL": s.db_url,
        "OPENLEDGER_CHAIN_PORT": str(s.chain_port),
        "OPENLEDGER_PASSWORD": PASSWORD,
        "OPENLEDGER_ADDRESSES": str(s.addresses_path),
    }.items():
        monkeypatch.setenv(key, value)
    return world


def test_train_from_yaml_then_publish(
    cli_world: World,
    tiny_base_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = learnable_snapshot(cli_world)
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        f"datanet: {ref}\nbase: {tiny_base_dir}\n"
        + "".join(f"{k}: {v}\n" for k, v in FAST.items() if k != "epochs")
    )
    assert main(["train", "--config", str(cfg), "--epochs", "2", "--json"]) == 0
    job = json.loads(capsys.readouterr().out)  # stdout: the one JSON document
    assert job["status"] == "succeeded" and job["params"]["config"]["epochs"] == 2
    assert job["params"]["config"]["rank"] == FAST["rank"]
    assert main(["jobs", "list"]) == 0 and main(["jobs", "show", str(job["id"])]) == 0
    assert "loss curve" in capsys.readouterr().out
    assert main(["model", "publish", str(job["id"]), "--name", "caps-cli", "--as", "dave"]) == 0
    assert "registered on chain" in capsys.readouterr().out
    assert main(["model", "show", "caps-cli"]) == 0 and main(["model", "list"]) == 0


def test_bad_training_requests_exit_nonzero(
    cli_world: World,
    tiny_base_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    learnable_snapshot(cli_world)
    base = str(tiny_base_dir)
    assert main(["train", "--datanet", "facts@4", "--base", base]) != 0
    assert "no snapshot version 4" in capsys.readouterr().err
    assert main(["train", "--datanet", "facts", "--base", base, "--rank", "0"]) != 0
    assert "rank" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.1\n")
    assert main(["train", "--datanet", "facts", "--base", base, "--config", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "learning_rate" in err and "Traceback" not in err
    assert main(["train", "--datanet", "facts", "--base", base, "--method", "qlora"]) != 0
    assert "qlora" in capsys.readouterr().err
    assert main(["jobs", "show", "999"]) != 0
