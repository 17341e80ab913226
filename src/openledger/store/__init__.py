"""Storage: the metadata database (SQLAlchemy + Alembic) and the content-addressed blobs.

``Database.open(url)`` gives a migrated database; data access lives in
:mod:`openledger.store.repo`; :class:`BlobStore` keeps files named by their sha256.
"""

from openledger.store import (
    agent_tables,
    api_tables,
    auth_tables,
    datanet_tables,
    factory_tables,
    ledger_tables,
    models,
    repo,
)
from openledger.store.blobs import BlobStore
from openledger.store.db import Database, mask_url

__all__ = [
    "BlobStore",
    "Database",
    "agent_tables",
    "api_tables",
    "auth_tables",
    "datanet_tables",
    "factory_tables",
    "ledger_tables",
    "mask_url",
    "models",
    "repo",
]
