"""The CLI: clear errors without tracebacks, non-zero exits, the devnet commands."""

from pathlib import Path

import pytest

from openledger.cli.main import main
from tests.conftest import PASSWORD, free_port


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("OPENLEDGER_HOME", str(home))
    monkeypatch.setenv("OPENLEDGER_CHAIN_PORT", str(free_port()))
    monkeypatch.setenv("OPENLEDGER_PASSWORD", PASSWORD)
    monkeypatch.delenv("OPENLEDGER_CHAIN_URL", raising=False)
    return home


def test_init_creates_the_home(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert "created" in out and "alice" in out
    assert (env / "keystore" / "operator.json").exists() and (env / "config.toml").exists()
    assert main(["init"]) == 0
    assert "already existed" in capsys.readouterr().out


def test_wrong_password_is_one_line_no_traceback(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main(["init"])
    capsys.readouterr()
    monkeypatch.setenv("OPENLEDGER_PASSWORD", "wrong")
    code = main(["chain", "up"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Wrong password" in err and "OPENLEDGER_PASSWORD" in err and "Traceback" not in err
    assert main(["chain", "status"]) == 1  # the failed `up` left no anvil running
    assert "not running" in capsys.readouterr().out


def test_unreachable_chain_url(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main(["init"])
    monkeypatch.setenv("OPENLEDGER_CHAIN_URL", f"http://127.0.0.1:{free_port()}")
    capsys.readouterr()
    assert main(["chain", "status"]) != 0
    err = capsys.readouterr().err
    assert "No EVM node answers" in err and "Traceback" not in err


def test_status_when_down(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init"])
    assert main(["chain", "status"]) == 1
    assert "not running" in capsys.readouterr().out


def test_bad_setting_exits_nonzero(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLEDGER_CHAIN_PORT", "eighty")
    assert main(["init"]) != 0
    assert "OPENLEDGER_CHAIN_PORT" in capsys.readouterr().err


def test_abi_export(tmp_path: Path, env: Path) -> None:
    assert main(["chain", "abi", str(tmp_path / "abi")]) == 0
    names = sorted(p.stem for p in (tmp_path / "abi").glob("*.json"))
    assert names == sorted(
        [
            "OpenToken",
            "ProtocolParams",
            "Governor",
            "Timelock",
            "Grants",
            "DatanetRegistry",
            "ModelRegistry",
            "InferenceEscrow",
            "RewardDistributor",
            "AgentRegistry",
            "ProviderRegistry",
        ]
    )


def test_abi_export_to_a_file_names_the_path_and_the_fix(
    tmp_path: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "abi.json"
    taken.write_text("keep me")
    assert main(["chain", "abi", str(taken)]) != 0
    err = capsys.readouterr().err
    assert str(taken) in err and "is a file" in err and "name a directory" in err
    assert "Traceback" not in err and "unexpected" not in err
    assert taken.read_text() == "keep me"


@pytest.mark.anvil
def test_up_status_down(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init"])
    try:
        assert main(["chain", "up"]) == 0
        out = capsys.readouterr().out
        assert "contracts deployed" in out and "OpenToken" in out and "1000000" in out
        assert main(["chain", "status"]) == 0
        assert main(["accounts"]) == 0
    finally:
        assert main(["chain", "down"]) == 0


def test_a_malformed_option_is_a_usage_error_not_a_traceback(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "abc"]) == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--port'" in err and "Traceback" not in err


def test_init_writes_an_operator_token_only_the_owner_reads(env: Path) -> None:
    assert main(["init"]) == 0
    token = env / "operator.token"
    assert token.read_text().startswith("olo_") and token.stat().st_mode & 0o777 == 0o600
    first = token.read_text()
    assert main(["init"]) == 0 and token.read_text() == first  # kept
    token.chmod(0o644)
    assert main(["accounts"]) == 1  # the CLI refuses a token others can read
    token.chmod(0o600)


def test_init_gives_a_home_made_before_operator_tokens_its_token(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["init"]) == 0
    keystore = (env / "keystore" / "operator.json").read_bytes()
    token = env / "operator.token"
    token.unlink()  # as homes made before the token have it
    capsys.readouterr()
    assert main(["accounts"]) == 1  # refused, and the error says exactly why and what to do
    err = capsys.readouterr().err
    assert f"The node home {env} has no operator token ({token})" in err
    assert "made before nodes had one" in err and "Traceback" not in err
    assert f"fix: run `OPENLEDGER_HOME={env} openledger init`" in err
    assert "only writes the missing token" in err
    monkeypatch.setenv("OPENLEDGER_PASSWORD", "not asked: the keystore is kept")
    assert main(["init"]) == 0
    said = capsys.readouterr().out
    assert "already existed (keys kept)" in said
    assert f"operator token written to {token} (mode 0600; this home had none)" in said
    assert token.read_text().startswith("olo_") and token.stat().st_mode & 0o777 == 0o600
    assert (env / "keystore" / "operator.json").read_bytes() == keystore
    assert main(["init"]) == 0 and f"operator token {token} (kept)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["receipts", "show", "1000000000000000000000000000000"], "larger than"),
        (["epoch", "show", "1000000000000000000000000000000"], "larger than"),
        (["jobs", "show", "99999999999999999999999"], "larger than"),
        (["deposit", "-5", "--as", "grace"], "-5 is negative"),
        (["audit", "--epoch", "999"], "Epoch 999 was never sealed on this node"),
    ],
)
def test_bad_arguments_are_one_line_no_traceback(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and "fix:" in err


def test_a_directory_as_a_file_is_an_error_not_a_traceback(
    env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from openledger.datanets.limits import IngestLimits
    from openledger.datanets.parsers import IngestError, parse_files

    folder = tmp_path / "notes.txt"  # a directory with a file's name
    folder.mkdir()
    with pytest.raises(IngestError) as err:  # what `contribute` runs on its files
        parse_files([folder], limits=IngestLimits())
    assert err.value.rule == "unreadable_file" and "not a folder" in err.value.fix
    # through the CLI: a directory given as the training config
    assert main(["init"]) == 0
    capsys.readouterr()
    config = tmp_path / "train.yaml"
    config.mkdir()
    assert main(["train", "--datanet", "facts", "--config", str(config)]) == 1
    err_text = capsys.readouterr().err
    assert f"Cannot read the training config {config}" in err_text and "fix:" in err_text
    assert "Traceback" not in err_text and len(err_text.strip().splitlines()) == 2
