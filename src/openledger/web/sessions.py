"""Sessions as signed cookies: ``base64url(JSON) . base64url(HMAC-SHA256)``.

The key is 32 random bytes in ``<home>/web/session.key`` (mode 0600), made on first use,
so sessions survive a restart of the node and are never part of the repository. A cookie
that is altered, signed with another key, malformed or past its expiry reads as no session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openledger.fsutil import write_atomic

COOKIE = "ol_session"
SESSION_TTL_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    """A signed-in account; ``dev`` is the node's dev-account name when it signed in as one."""

    address: str
    dev: str | None
    chain_id: int
    expires: float

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "dev": self.dev, "chain_id": self.chain_id,
                "expires": int(self.expires)}  # fmt: skip


def load_key(path: Path) -> bytes:
    """The session key at ``path``, created (0600) if missing."""
    if path.exists():
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    write_atomic(path, key, mode=0o600)
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, key: bytes, ttl: float = SESSION_TTL_S,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._key = key
        self.ttl = ttl
        self.clock = clock

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, address: str, chain_id: int, dev: str | None = None) -> tuple[Session, str]:
        session = Session(address, dev, chain_id, float(int(self.clock() + self.ttl)))
        body = _b64(json.dumps(session.to_dict(), sort_keys=True).encode())
        return session, f"{body}.{self._mac(body)}"

    def read(self, token: str | None) -> Session | None:
        """The session in ``token``, or None if it is missing, forged or expired."""
        if not token or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            doc = json.loads(_unb64(body))
            session = Session(str(doc["address"]), doc.get("dev"), int(doc["chain_id"]),
                              float(doc["expires"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self.clock() else None
