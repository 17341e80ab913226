import json
from dataclasses import replace
from pathlib import Path

import pytest

from openledger.chain.accounts import (
    DEV_NAMES,
    AccountBook,
    create_keystore,
    load_keystore,
)
from openledger.config import Settings
from openledger.errors import ConfigError, KeystoreError, NotFoundError

# anvil's first accounts from its public mnemonic (index 1 and 2)
ANVIL_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ANVIL_2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def test_keystore_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    address = create_keystore(path, "pw")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert (
        "pw" not in path.read_text() and json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    )
    assert load_keystore(path, "pw").address == address


def test_wrong_password_is_a_keystore_error(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw")
    with pytest.raises(KeystoreError) as err:
        load_keystore(path, "nope")
    assert "OPENLEDGER_PASSWORD" in str(err.value)


def test_existing_keystore_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    create_keystore(path, "pw")
    before = path.read_text()
    with pytest.raises(ConfigError):
        create_keystore(path, "pw2")
    assert path.read_text() == before


def test_empty_password_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError):
        create_keystore(tmp_path / "k.json", "")
    assert not (tmp_path / "k.json").exists()


def test_dev_accounts_are_anvils_and_resolve_by_name(home: Settings) -> None:
    book = AccountBook(home, password_source=lambda: "correct horse battery staple")
    assert book.names() == ["operator", *DEV_NAMES]
    assert book.address("alice") == ANVIL_1 and book.address("bob") == ANVIL_2
    assert book.signer("alice").address == ANVIL_1
    assert book.signer("operator").address == book.address("operator")


def test_unknown_name_lists_the_known_ones(home: Settings) -> None:
    book = AccountBook(home)
    with pytest.raises(NotFoundError) as err:
        book.signer("mallory")
    assert "alice" in err.value.fix and err.value.field == "account"


def test_dev_accounts_refused_off_devnet(home: Settings) -> None:
    book = AccountBook(replace(home, chain_id=10))
    with pytest.raises(ConfigError) as err:
        book.signer("alice")
    assert "chain id 10" in err.value.message
