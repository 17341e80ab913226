"""API keys: programs call the serving API as one of the node's accounts.

A key is ``olk_`` + ``secrets.token_urlsafe(32)``, shown once when it is created. The store
keeps its public prefix (``key_id``, the first 12 characters) and the sha256 of the whole
secret, never the secret itself.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from openledger.chain.accounts import AccountBook
from openledger.errors import AuthError, NotFoundError, ValidationError
from openledger.store.api_tables import ApiKeyRow
from openledger.store.db import Database
from openledger.store.models import utcnow

KEY_PREFIX = "olk_"
KEY_ID_LEN = 12
KEY_LEN = len(KEY_PREFIX) + 43  # token_urlsafe(32) is 43 characters
LABEL_MAX = 200
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key
HEADER = "Authorization"
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class ApiPrincipal:
    """Who a request authenticated as."""

    key_id: str
    account: str
    address: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _missing_key() -> AuthError:
    return AuthError(
        "No API key given.",
        field=HEADER,
        fix="send the header `Authorization: Bearer olk_…`; create a key with "
        "`openledger keys create --as ACCOUNT`.",
    )


def _well_formed(secret: str) -> bool:
    body = secret.removeprefix(KEY_PREFIX)
    return len(secret) == KEY_LEN and secret.startswith(KEY_PREFIX) and set(body) <= _URLSAFE


def bearer_secret(header: str | None) -> str:
    """The key in an ``Authorization: Bearer <key>`` header; AuthError when absent or bad."""
    if header is None or not header.strip():
        raise _missing_key()
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthError(
            f"The {HEADER} header is not of the form `Bearer <key>`.",
            field=HEADER,
            fix="send `Authorization: Bearer olk_…` (the word Bearer, a space, the key).",
        )
    return secret.strip()


def key_dict(row: ApiKeyRow) -> dict[str, Any]:
    """A key as shown to people: never its secret or hash."""

    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "key_id": row.key_id,
        "account": row.account,
        "address": row.address,
        "label": row.label,
        "created": iso(row.created_at),
        "last_used": iso(row.last_used_at),
        "revoked": iso(row.revoked_at),
    }


@dataclass
class ApiKeyService:
    db: Database
    accounts: AccountBook
    clock: Callable[[], datetime] = utcnow

    def create(self, account: str, label: str = "") -> dict[str, Any]:
        """A new key for ``account``; the returned ``key`` is the only copy of the secret."""
        self._check_account(account)
        address = self.accounts.address(account)
        if len(label) > LABEL_MAX:
            raise ValidationError(
                f"The label is {len(label)} characters long; at most {LABEL_MAX} are kept.",
                field="--label",
                value=label[:40] + "…",
                fix=f"use a label of at most {LABEL_MAX} characters.",
            )
        with self.db.session() as s:
            while True:  # a clash of 48 random bits is unlikely, not impossible
                secret = KEY_PREFIX + secrets.token_urlsafe(32)
                key_id = secret[:KEY_ID_LEN]
                if s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.key_id == key_id)) is None:
                    break
            row = ApiKeyRow(key_id=key_id, key_hash=hash_key(secret), account=account,
                            address=address, label=label, created_at=self.clock())  # fmt: skip
            s.add(row)
            s.flush()
            return {**key_dict(row), "key": secret}

    def list(self, account: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every key (or ``account``'s), oldest first, without secrets."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if account is not None:
            self._check_account(account)
            query = query.where(ApiKeyRow.account == account)
        with self.db.session() as s:
            return [key_dict(row) for row in s.scalars(query)]

    def revoke(self, key_id: str) -> dict[str, Any]:
        """Revoke a key at once. Revoking a revoked key changes nothing and is not an error."""
        with self.db.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id.strip()))
            if row is None:
                raise NotFoundError(
                    f"No API key with id {key_id!r}.",
                    field="KEY_ID",
                    value=key_id,
                    fix="run `openledger keys list` to see the key ids (olk_ and 8 characters).",
                )
            if row.revoked_at is None:
                row.revoked_at = self.clock()
            return key_dict(row)

    def verify(self, secret: str | None) -> ApiPrincipal:
        """The account a presented key belongs to; AuthError if missing, unknown or revoked."""
        if not secret:
            raise _missing_key()
        if not _well_formed(secret):
            raise AuthError(
                "The API key is malformed.",
                field=HEADER,
                fix=f"send the whole key as printed by `openledger keys create` "
                f"({KEY_PREFIX} and {KEY_LEN - len(KEY_PREFIX)} more characters).",
            )
        key_id = secret[:KEY_ID_LEN]
        now = self.clock()
        with self.db.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id))
            if row is None or not hmac.compare_digest(row.key_hash, hash_key(secret)):
                raise AuthError(
                    f"Unknown API key {key_id}….",
                    field=HEADER,
                    value=key_id,
                    fix="check the key, or create one with `openledger keys create --as ACCOUNT`.",
                )
            if row.revoked_at is not None:
                raise AuthError(
                    f"The API key {key_id} was revoked at {row.revoked_at.isoformat()}.",
                    field=HEADER,
                    value=key_id,
                    fix="create a new key with `openledger keys create --as ACCOUNT`.",
                )
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
                stale = now - LAST_USED_EVERY
                s.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == row.id)
                    .where(or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at <= stale))
                    .values(last_used_at=now)
                )
            return ApiPrincipal(key_id=row.key_id, account=row.account, address=row.address)

    def _check_account(self, account: str) -> None:
        names = self.accounts.names()
        if account not in names:
            raise NotFoundError(
                f"No account named {account!r} on this node.",
                field="--as",
                value=account,
                fix=f"use one of: {', '.join(names)} (`openledger accounts` lists them).",
            )
