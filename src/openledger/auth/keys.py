"""API keys: programs call the API for one account, with scopes.

A key is ``olk_`` + ``secrets.token_urlsafe(32)``, shown once when it is created. The store
keeps its public prefix (``key_id``, the first 12 characters) and the sha256 of the whole
secret, never the secret itself. A key is bound either to one of the node's named accounts
(``openledger keys create --as NAME``) or to a wallet's address (created by that address's
web session). Scopes: ``inference`` (/v1, attribution queries), ``read`` (the account's own
receipts and credit), ``write`` (every state-changing route); a new key has
``inference,read`` unless asked otherwise.

Checking a key is cached for ``CACHE_TTL`` seconds per process (the paid routes check one on
every request); revoking a key clears this process's cache at once, and others within the TTL.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from openledger.auth.principal import DEFAULT_SCOPES, SCOPES, ApiPrincipal, Principal
from openledger.chain.accounts import AccountBook
from openledger.errors import AuthError, NotFoundError, Requester, ValidationError
from openledger.store.api_tables import ApiKeyRow
from openledger.store.db import Database
from openledger.store.models import utcnow

KEY_PREFIX = "olk_"
KEY_ID_LEN = 12
KEY_LEN = len(KEY_PREFIX) + 43  # token_urlsafe(32) is 43 characters
LABEL_MAX = 200
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key
HEADER = "Authorization"
CACHE_TTL = 5.0
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _missing_key() -> AuthError:
    return AuthError(
        "No API key given.",
        field=HEADER,
        fix="send the header `Authorization: Bearer olk_…` with an API key of the account "
        "(create one first if it has none).",
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
        "scopes": row.scopes.split(","),
    }


def parse_scopes(scopes: Iterable[str] | str | None) -> tuple[str, ...]:
    """Scopes as given (a list, or comma-separated text) checked and in canonical order."""
    if scopes is None:
        return DEFAULT_SCOPES
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = {str(x).strip() for x in items if str(x).strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown or not wanted:
        raise ValidationError(
            f"Unknown scope(s) {', '.join(repr(u[:40]) for u in unknown)}."
            if unknown
            else "No scope given.",
            field="scopes",
            value=",".join(sorted(wanted))[:80],
            fix=f"use one or more of: {', '.join(SCOPES)}.",
        )
    return tuple(x for x in SCOPES if x in wanted)


@dataclass
class ApiKeyService:
    db: Database
    accounts: AccountBook
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._cache_lock = threading.Lock()

    def create(
        self, account: str, label: str = "", scopes: Iterable[str] | str | None = None
    ) -> dict[str, Any]:
        """A new key for ``account`` (a node account's name, or a 0x address for a wallet's
        own key); the returned ``key`` is the only copy of the secret."""
        chosen = ",".join(parse_scopes(scopes))
        if account.startswith("0x"):
            account = address = self.accounts.resolve(account)
        else:
            self._check_account(account)
            address = self.accounts.resolve(account)
        if len(label) > LABEL_MAX:
            raise ValidationError(
                f"The label is {len(label)} characters long; at most {LABEL_MAX} are kept.",
                field="label",
                value=label[:40] + "…",
                fix=f"use a label of at most {LABEL_MAX} characters.",
            )
        with self.db.session() as s:
            while True:  # a clash of 48 random bits is unlikely, not impossible
                secret = KEY_PREFIX + secrets.token_urlsafe(32)
                key_id = secret[:KEY_ID_LEN]
                if s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.key_id == key_id)) is None:
                    break
            row = ApiKeyRow(
                key_id=key_id,
                key_hash=hash_key(secret),
                account=account,
                address=address,
                label=label,
                created_at=self.clock(),
                scopes=chosen,
            )
            s.add(row)
            s.flush()
            return {**key_dict(row), "key": secret}

    def list(self, account: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every key (or ``account``'s: a name or a wallet address), oldest first, without
        secrets."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if account is not None:
            if not account.startswith("0x"):
                self._check_account(account)
            query = query.where(ApiKeyRow.account == account)
        with self.db.session() as s:
            return [key_dict(row) for row in s.scalars(query)]

    def revoke(self, key_id: str, requester: Requester | None = None) -> dict[str, Any]:
        """Revoke a key at once. Revoking a revoked key changes nothing and is not an error.
        With ``requester``, only for the account the key is bound to (or the operator)."""
        with self.db.session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_id == key_id.strip()))
            if row is None:
                raise NotFoundError(
                    f"No API key with id {key_id!r}.",
                    field="key_id",
                    value=key_id,
                    fix="list the account's API keys to see their ids (olk_ and 8 characters).",
                )
            if requester is not None and not requester.owns(row.address):
                raise requester.forbid(f"the API key {row.key_id}", "revoke it")
            if row.revoked_at is None:
                row.revoked_at = self.clock()
            with self._cache_lock:
                self._cache = {h: p for h, p in self._cache.items() if p[0].key_id != row.key_id}
            return key_dict(row)

    def owner(self, key_id: str) -> str | None:
        """The address a key is bound to (None if there is no such key)."""
        with self.db.session() as s:
            return s.scalar(select(ApiKeyRow.address).where(ApiKeyRow.key_id == key_id.strip()))

    def verify(self, secret: str | None) -> ApiPrincipal:
        """The account a presented key belongs to; AuthError if missing, unknown or revoked."""
        if not secret:
            raise _missing_key()
        digest = hash_key(secret)
        now = self.clock().timestamp()
        with self._cache_lock:
            hit = self._cache.get(digest)
        if hit is not None and now < hit[1]:
            return hit[0]
        principal = self._verify(secret)
        with self._cache_lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, now + CACHE_TTL)
        return principal

    def _verify(self, secret: str) -> ApiPrincipal:
        if not _well_formed(secret):
            raise AuthError(
                "The API key is malformed.",
                field=HEADER,
                fix=f"send the whole key as it was shown when it was created "
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
                    fix="check the key, or create a new API key for the account.",
                )
            if row.revoked_at is not None:
                raise AuthError(
                    f"The API key {key_id} was revoked at {row.revoked_at.isoformat()}.",
                    field=HEADER,
                    value=key_id,
                    fix="create a new API key for the account.",
                )
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
                stale = now - LAST_USED_EVERY
                s.execute(
                    update(ApiKeyRow)
                    .where(ApiKeyRow.id == row.id)
                    .where(or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at <= stale))
                    .values(last_used_at=now)
                )
            named = None if row.account.startswith("0x") else row.account
            return Principal(
                kind="key",
                address=row.address,
                account=named,
                scopes=frozenset(row.scopes.split(",")),
                key_id=row.key_id,
            )

    def _check_account(self, account: str) -> None:
        names = self.accounts.names()
        if account not in names:
            raise NotFoundError(
                f"No account named {account!r} on this node.",
                field="account",
                value=account,
                fix=f"use one of: {', '.join(names)}.",
            )
