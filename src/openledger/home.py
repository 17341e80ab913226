"""Creating a node home: config file, operator keystore and token, devnet accounts, store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openledger.auth.operator_token import ensure_token
from openledger.chain.accounts import (
    create_keystore,
    import_keystore,
    keystore_address,
    load_keystore,
    write_dev_accounts,
)
from openledger.config import Settings, write_default_config
from openledger.errors import ConfigError
from openledger.store.db import Database


@dataclass(frozen=True)
class InitResult:
    home: Path
    operator: str
    dev_accounts: dict[str, str]
    created: bool  # False when the home already existed and was left as it was
    token_written: bool = False  # a new operator token (a new home, or one made before them)


def init_home(
    settings: Settings,
    password: str,
    *,
    keystore_file: Path | None = None,
    private_key: str | None = None,
) -> InitResult:
    """Create the node home; an existing one is kept (its keys are never replaced). The
    operator key is new, or an existing funded one: ``keystore_file`` (opened with
    ``password``) or ``private_key`` (encrypted with ``password``)."""
    layout = settings.layout
    created = not layout.operator_keystore.exists()
    if not created and (keystore_file or private_key):
        raise ConfigError(
            f"The node home {layout.root} has an operator key already "
            f"({keystore_address(layout.operator_keystore)}); it is never replaced.",
            field="--import-keystore" if keystore_file else "--private-key-env",
            value=str(layout.operator_keystore),
            fix="use another node home (--home) for the imported key, or keep this one.",
        )
    if keystore_file is not None:
        load_keystore(keystore_file, password)  # before anything is written: the password
    layout.root.mkdir(parents=True, exist_ok=True)
    write_default_config(settings)
    if created and keystore_file is not None:
        operator = import_keystore(keystore_file, layout.operator_keystore, password)
    elif created:
        operator = create_keystore(layout.operator_keystore, password, private_key)
    else:
        operator = keystore_address(layout.operator_keystore)
    dev = write_dev_accounts(layout.dev_accounts_file)
    token_written = ensure_token(layout.root)  # the operator token (0600): kept if there
    layout.blobs_dir.mkdir(exist_ok=True)
    layout.chain_dir.mkdir(exist_ok=True)
    db = Database.open(settings.db_url)
    db.dispose()
    return InitResult(
        home=layout.root,
        operator=operator,
        dev_accounts=dev,
        created=created,
        token_written=token_written,
    )
