"""Creating a node home: config file, operator keystore and token, devnet accounts, store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openledger.api.operator_token import ensure_token
from openledger.chain.accounts import create_keystore, keystore_address, write_dev_accounts
from openledger.config import Settings, write_default_config
from openledger.store.db import Database


@dataclass(frozen=True)
class InitResult:
    home: Path
    operator: str
    dev_accounts: dict[str, str]
    created: bool  # False when the home already existed and was left as it was
    token_written: bool = False  # a new operator token (a new home, or one made before them)


def init_home(settings: Settings, password: str) -> InitResult:
    """Create the node home; an existing one is kept (its keys are never replaced)."""
    layout = settings.layout
    layout.root.mkdir(parents=True, exist_ok=True)
    write_default_config(settings)
    created = not layout.operator_keystore.exists()
    if created:
        operator = create_keystore(layout.operator_keystore, password)
    else:
        operator = keystore_address(layout.operator_keystore)
    dev = write_dev_accounts(layout.dev_accounts_file)
    token_written = ensure_token(layout.root)  # the operator token (0600): kept if there
    layout.blobs_dir.mkdir(exist_ok=True)
    layout.chain_dir.mkdir(exist_ok=True)
    db = Database.open(settings.db_url)
    db.dispose()
    return InitResult(home=layout.root, operator=operator, dev_accounts=dev, created=created,
                      token_written=token_written)  # fmt: skip
