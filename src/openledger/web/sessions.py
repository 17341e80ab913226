"""Web sessions, kept in the database.

A session's cookie is ``ols_`` + 43 random characters; the database keeps its sha256, the
account, the chain and the expiry (12 hours). Sessions survive a restart, every API process
on the same database sees the same ones, and logout revokes one at once: a revoked,
expired, unknown or malformed cookie reads as no session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from openledger.store.auth_tables import WebSessionRow
from openledger.store.db import Database

COOKIE = "ol_session"
SESSION_TTL_S = 12 * 3600
TOKEN_PREFIX = "ols_"
TOKEN_LEN = len(TOKEN_PREFIX) + 43


@dataclass(frozen=True)
class Session:
    """A signed-in account; ``dev`` is the node's dev-account name when it signed in as one."""

    address: str
    dev: str | None
    chain_id: int
    expires: float
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "dev": self.dev,
            "chain_id": self.chain_id,
            "expires": int(self.expires),
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SessionStore:
    def __init__(
        self, db: Database, ttl: float = SESSION_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.clock = clock

    def issue(self, address: str, chain_id: int, dev: str | None = None) -> tuple[Session, str]:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = float(int(self.clock() + self.ttl))
        with self.db.session() as s:
            row = WebSessionRow(
                token_hash=_digest(token),
                address=address,
                dev=dev,
                chain_id=chain_id,
                created_at=_at(self.clock()),
                expires_at=_at(expires),
            )
            s.add(row)
            s.flush()
            sid = row.id
        return Session(address, dev, chain_id, expires, sid), token

    def read(self, token: str | None) -> Session | None:
        """The session of ``token``, or None if it is missing, unknown, revoked or expired."""
        if not token or len(token) != TOKEN_LEN or not token.startswith(TOKEN_PREFIX):
            return None
        with self.db.session() as s:
            row = s.scalar(select(WebSessionRow).where(WebSessionRow.token_hash == _digest(token)))
            if row is None or row.revoked_at is not None:
                return None
            expires = row.expires_at.timestamp()
            if expires <= self.clock():
                return None
            return Session(row.address, row.dev, row.chain_id, expires, row.id)

    def revoke(self, token: str | None) -> bool:
        """Revoke the session of ``token`` (logout); False if there was none to revoke."""
        if not token:
            return False
        with self.db.session() as s:
            done = s.execute(
                update(WebSessionRow)
                .where(
                    WebSessionRow.token_hash == _digest(token), WebSessionRow.revoked_at.is_(None)
                )
                .values(revoked_at=_at(self.clock()))
            ).rowcount
        return done == 1
