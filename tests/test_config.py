from pathlib import Path

import pytest

from openledger.config import DEVNET_CHAIN_ID, Settings, write_default_config
from openledger.errors import ConfigError


def test_defaults_live_in_the_home(tmp_path: Path) -> None:
    s = Settings.load(env={"OPENLEDGER_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    assert s.db_url == f"sqlite:///{tmp_path.resolve() / 'openledger.db'}"
    assert s.is_devnet and s.rpc_url == "http://127.0.0.1:8545"
    assert s.chain_id == DEVNET_CHAIN_ID
    assert s.addresses_path == tmp_path.resolve() / "chain" / "addresses.json"


def test_config_file_is_read_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[chain]\nurl = "http://10.9.9.9:8545"\nchain_id = 10\n[api]\nport = 9001\n'
    )
    s = Settings.load(env={"OPENLEDGER_HOME": str(tmp_path), "OPENLEDGER_CHAIN_ID": "8453"})
    assert s.chain_url == "http://10.9.9.9:8545" and not s.is_devnet
    assert s.chain_id == 8453  # env beats the file
    assert s.api_port == 9001


def test_written_default_config_round_trips(tmp_path: Path) -> None:
    s = Settings.load(env={"OPENLEDGER_HOME": str(tmp_path), "OPENLEDGER_CHAIN_PORT": "9545"})
    write_default_config(s)
    again = Settings.load(env={"OPENLEDGER_HOME": str(tmp_path)})
    assert again.chain_port == 9545 and again.db_url == s.db_url and again.is_devnet
    assert again.ledger_pricing_process == 1  # charges priced in a child process by default


def test_pricing_in_the_node_s_process_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[ledger]\npricing_process = 0\n")
    assert Settings.load(env={"OPENLEDGER_HOME": str(tmp_path)}).ledger_pricing_process == 0
    with pytest.raises(ConfigError) as err:
        Settings.load(
            env={"OPENLEDGER_HOME": str(tmp_path), "OPENLEDGER_LEDGER_PRICING_PROCESS": "2"}
        )
    assert err.value.field == "ledger_pricing_process" and "not 0 or 1" in err.value.message


def test_bad_number_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"OPENLEDGER_HOME": str(tmp_path), "OPENLEDGER_CHAIN_ID": "mainnet"})
    assert err.value.field == "OPENLEDGER_CHAIN_ID" and "'mainnet'" in err.value.message


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[chain\nurl=")
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"OPENLEDGER_HOME": str(tmp_path)})
    assert "config.toml" in err.value.message and err.value.fix
