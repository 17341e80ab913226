"""Secrets the node makes for itself once and keeps in its database (``node_secrets``), so
that every process on the same database uses the same one."""

from __future__ import annotations

import secrets

from sqlalchemy import exc as sa_exc

from openledger.store.auth_tables import NodeSecretRow
from openledger.store.db import Database


def node_secret(db: Database, name: str, nbytes: int = 32) -> bytes:
    """The secret ``name``, made (``nbytes`` random bytes) on first use. Two processes that
    make it at once agree: the first insert wins and the other reads it."""
    with db.session() as s:
        row = s.get(NodeSecretRow, name)
        if row is not None:
            return bytes.fromhex(row.value)
    try:
        with db.session() as s:
            s.add(NodeSecretRow(name=name, value=secrets.token_bytes(nbytes).hex()))
    except sa_exc.IntegrityError:
        pass  # made meanwhile by another process
    with db.session() as s:
        row = s.get(NodeSecretRow, name)
        assert row is not None
        return bytes.fromhex(row.value)
