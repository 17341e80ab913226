"""Signing accounts: the operator's encrypted keystore and the named devnet accounts."""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openledger.chain.addr import is_address, to_checksum_address
from openledger.config import DEVNET_CHAIN_ID, Settings
from openledger.errors import (
    ConfigError,
    ConflictError,
    KeystoreError,
    NotFoundError,
    OpenLedgerError,
    ValidationError,
)
from openledger.fsutil import write_atomic

# anvil's built-in, world-known mnemonic: its accounts are pre-funded on every devnet and must
# never hold value anywhere else.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_NAMES: tuple[str, ...] = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
OPERATOR = "operator"
PASSWORD_ENV = "OPENLEDGER_PASSWORD"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount


def _account():
    """eth_account's ``Account`` (imported on first use: ~0.6 s that reads never pay)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return Account


def create_keystore(path: Path, password: str, private_key: str | None = None) -> str:
    """Encrypt a new (or the given) key into ``path``; returns its address."""
    if path.exists():
        raise ConfigError(
            f"A keystore already exists at {path}.",
            field="keystore",
            value=str(path),
            fix="keep using it, or move it away first if you really want a new key.",
        )
    if not password:
        raise KeystoreError(
            "The keystore password is empty.",
            field=PASSWORD_ENV,
            fix=f"set {PASSWORD_ENV} or type a non-empty password at the prompt.",
        )
    Account = _account()
    account = Account.from_key(private_key) if private_key else Account.create()
    # scrypt n=2**14 keeps `init` fast while staying a real KDF; geth's "light" parameters.
    keystore = Account.encrypt(account.key, password, kdf="scrypt", iterations=2**14)
    write_atomic(path, json.dumps(keystore, indent=2), mode=0o600)
    return account.address


def import_keystore(source: Path, path: Path, password: str) -> str:
    """Adopt an existing encrypted keystore (geth / eth-account format) as ``path``, after
    checking that ``password`` opens it; returns its address."""
    account = load_keystore(source, password)  # a wrong password or a bad file: KeystoreError
    if path.exists():
        raise ConfigError(
            f"A keystore already exists at {path}.",
            field="keystore",
            value=str(path),
            fix="keep using it, or move it away first if you really want another key.",
        )
    write_atomic(path, source.read_text(encoding="utf-8"), mode=0o600)
    return account.address


def private_key_from_env(var: str) -> str:
    """The 32-byte hex private key in the environment variable ``var``."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        raise KeystoreError(
            f"The environment variable {var} is empty or not set.",
            field="--private-key-env",
            value=var,
            fix=f"export {var}=0x… (the operator's 32-byte private key in hex) and run init "
            "again; the key is stored only encrypted.",
        )
    body = raw.removeprefix("0x")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", body):
        raise KeystoreError(
            f"{var} does not hold a private key (64 hex digits, optionally with 0x).",
            field="--private-key-env",
            value=var,
            fix=f"set {var} to the key's 64 hex digits.",
        )
    return "0x" + body


def load_keystore(path: Path, password: str) -> LocalAccount:
    """Decrypt a keystore; a wrong password or a damaged file is a KeystoreError."""
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeystoreError(
            f"No keystore at {path}.",
            field="keystore",
            value=str(path),
            fix="run `openledger init` to create the node home and its operator key.",
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeystoreError(
            f"The keystore {path} is not valid JSON.",
            field="keystore",
            value=str(path),
            fix="restore it from your backup.",
        ) from exc
    try:
        key = _account().decrypt(keystore, password)
    except ValueError as exc:
        raise KeystoreError(
            f"Wrong password for the keystore {path}.",
            field=PASSWORD_ENV,
            fix=f"set {PASSWORD_ENV} to the password chosen at `openledger init`.",
        ) from exc
    return _account().from_key(key)


def keystore_address(path: Path) -> str:
    """The checksum address a keystore file holds (readable without the password)."""
    address = json.loads(path.read_text(encoding="utf-8"))["address"]
    return to_checksum_address("0x" + address.removeprefix("0x"))


def dev_account(index: int) -> LocalAccount:
    return _account().from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def write_dev_accounts(path: Path) -> dict[str, str]:
    """Record the named devnet accounts (anvil's indices 1..8) beside the accounts made with
    `openledger accounts create` (kept); returns name -> address."""
    entries = {}
    for offset, name in enumerate(DEV_NAMES, start=1):
        acct = dev_account(offset)
        entries[name] = {"address": acct.address, "private_key": acct.key.hex(), "index": offset}
    if path.exists():
        kept = json.loads(path.read_text(encoding="utf-8")).get("accounts", {})
        entries.update({n: e for n, e in kept.items() if e.get("created") and n not in entries})
    doc = {
        "warning": "DEVNET ONLY: well-known keys from anvil's public mnemonic",
        "accounts": entries,
    }
    write_atomic(path, json.dumps(doc, indent=2), mode=0o600)
    return {name: e["address"] for name, e in entries.items()}


def prompt_password(confirm: bool = False) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    try:
        password = getpass.getpass("Operator keystore password: ")
        if confirm and getpass.getpass("Repeat the password: ") != password:
            raise KeystoreError("The two passwords differ.", fix="run the command again.")
    except EOFError as exc:
        raise KeystoreError(
            "No password given and no terminal to ask for one.",
            field=PASSWORD_ENV,
            fix=f"set {PASSWORD_ENV} in the environment.",
        ) from exc
    return password


@dataclass
class AccountBook:
    """Resolves ``--as NAME`` to a signer: the operator keystore or a named devnet account."""

    settings: Settings
    password_source: Callable[[], str] = prompt_password

    def __post_init__(self) -> None:
        self._operator: LocalAccount | None = None

    def _dev_entries(self) -> dict[str, dict]:
        path = self.settings.layout.dev_accounts_file
        if not path.exists():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))["accounts"]

    def operator_address(self) -> str:
        try:
            return keystore_address(self.settings.layout.operator_keystore)
        except FileNotFoundError as exc:
            raise ConfigError(
                f"The node home {self.settings.home} has no operator key.",
                field="OPENLEDGER_HOME",
                value=str(self.settings.home),
                fix="run `openledger init` first.",
            ) from exc

    def names(self) -> list[str]:
        return [OPERATOR, *self._dev_entries()]

    def address(self, name: str) -> str:
        if name == OPERATOR:
            return self.operator_address()
        return self._dev_entry(name)["address"]

    def resolve(self, account: str) -> str:
        """The address ``account`` names: a 0x address (or its 40 hex digits alone, which no
        account name can be), checksummed; else the address of a named account of this
        node. The one place a name-or-address becomes an address: the CLI, both HTTP faces
        and the services all call it."""
        if account.startswith("0x") or is_address(account):
            if not is_address(account):
                raise ValidationError(
                    f"{account[:60]!r} is not an address.",
                    field="account",
                    value=account[:60],
                    fix="give a 0x address of 40 hex digits or an account name (alice, operator…).",
                )
            return to_checksum_address(account)
        try:
            return self.address(account)
        except NotFoundError as exc:
            raise NotFoundError(exc.message, field="account", value=account, fix=exc.fix) from exc

    def name_of(self, address: str) -> str | None:
        """The name of this node's account at ``address`` (the operator or a dev account),
        None when the node holds no key for it."""
        wanted = address.lower()
        return next((n for n in self.names() if self.address(n).lower() == wanted), None)

    def refers_to(self, account: str, address: str) -> bool:
        """Whether ``account`` (a name or an address, as :meth:`resolve` takes it) names
        ``address``; a name or address that names nothing is not it either."""
        try:
            return self.resolve(account).lower() == address.lower()
        except OpenLedgerError:
            return False

    def create_dev_account(self, name: str) -> str:
        """A new devnet account ``name`` with a fresh random key, kept in the home's dev
        accounts file (mode 0600) beside the named ones; returns its address."""
        if not NAME_RE.fullmatch(name) or name == OPERATOR:
            raise ValidationError(
                f"{name!r} cannot name an account.",
                field="NAME",
                value=name,
                fix="use 2-32 lowercase letters, digits, '-' or '_', starting with a letter "
                "(not 'operator').",
            )
        if self.settings.chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(
                f"Accounts are created only on the devnet (chain id {DEVNET_CHAIN_ID}), not "
                f"on chain id {self.settings.chain_id}.",
                field="chain_id",
                value=self.settings.chain_id,
                fix="on a real chain make a key in your wallet and fund it yourself.",
            )
        path = self.settings.layout.dev_accounts_file
        doc = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        entries = doc.setdefault("accounts", {})
        if name in entries:
            raise ConflictError(
                f"The account {name!r} exists already ({entries[name]['address']}).",
                field="name",
                value=name,
                fix=f"act as {name}, or choose another name.",
            )
        acct = _account().create()
        entries[name] = {"address": acct.address, "private_key": acct.key.hex(), "created": True}
        doc.setdefault("warning", "DEVNET ONLY: well-known keys from anvil's public mnemonic")
        write_atomic(path, json.dumps(doc, indent=2), mode=0o600)
        return acct.address

    def signer(self, name: str) -> LocalAccount:
        if name == OPERATOR:
            if self._operator is None:
                self._operator = load_keystore(
                    self.settings.layout.operator_keystore, self.password_source()
                )
            return self._operator
        return _account().from_key(self._dev_entry(name)["private_key"])

    def _dev_entry(self, name: str) -> dict:
        entries = self._dev_entries()
        if name not in entries:
            known = ", ".join(self.names())
            raise NotFoundError(
                f"No account named {name!r} in {self.settings.home}.",
                field="account",
                value=name,
                fix=f"use one of: {known}.",
            )
        if self.settings.chain_id != DEVNET_CHAIN_ID:
            raise ConfigError(
                f"Account {name!r} is a devnet account with a public key; it is refused on "
                f"chain id {self.settings.chain_id}.",
                field="account",
                value=name,
                fix="sign with the operator keystore or your own key on real chains.",
            )
        return entries[name]
