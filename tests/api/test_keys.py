"""API keys: created once, stored as hashes, verified, listed, revoked; the Bearer dependency."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from openledger.app import create_app
from openledger.auth.keys import (
    CACHE_TTL,
    KEY_LEN,
    ApiKeyService,
    ApiPrincipal,
    bearer_secret,
    hash_key,
)
from openledger.auth.principal import Principal
from openledger.config import Settings
from openledger.errors import AuthError, ForbiddenError, NotFoundError, ValidationError
from openledger.http.credentials import AnyPrincipal as PrincipalDep
from openledger.node import Node
from openledger.store.api_tables import ApiKeyRow
from tests.conftest import PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def node(home: Settings) -> Iterator[Node]:
    node = Node(home, password_source=lambda: PASSWORD)
    yield node
    node.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(node: Node, clock: Clock) -> ApiKeyService:
    return ApiKeyService(node.db, node.accounts, clock=clock)


def test_create_returns_the_secret_once_and_stores_only_its_hash(
    node: Node, keys: ApiKeyService
) -> None:
    doc = keys.create("alice", "notebook")
    secret = doc["key"]
    assert secret.startswith("olk_") and len(secret) == KEY_LEN
    assert doc["key_id"] == secret[:12]
    assert doc["account"] == "alice" and doc["address"] == node.accounts.address("alice")
    assert doc["label"] == "notebook" and doc["last_used"] is None and doc["revoked"] is None
    with node.db.session() as s:
        row = s.scalars(select(ApiKeyRow)).one()
        stored = [getattr(row, c.key) for c in ApiKeyRow.__table__.columns]
    assert secret not in stored and row.key_hash == hash_key(secret)
    assert all("key" not in k and "key_hash" not in k for k in keys.list())


def test_verify_gives_the_principal_from_a_fresh_node(
    home: Settings, node: Node, keys: ApiKeyService
) -> None:
    doc = keys.create("operator")
    principal = keys.verify(doc["key"])
    assert principal == ApiPrincipal(
        kind="key",
        address=node.accounts.operator_address(),
        account="operator",
        scopes=frozenset({"inference", "read"}),
        key_id=doc["key_id"],
    )
    other = Node(home)  # a restarted node knows the key from the store alone
    try:
        assert other.api_keys.verify(doc["key"]) == principal
    finally:
        other.close()


def test_last_used_is_written_at_most_once_a_minute(keys: ApiKeyService, clock: Clock) -> None:
    secret = keys.create("bob")["key"]
    keys.verify(secret)
    first = clock.now
    assert keys.list()[0]["last_used"] == first.isoformat()
    clock.now += timedelta(seconds=59)
    keys.verify(secret)
    assert keys.list()[0]["last_used"] == first.isoformat()
    clock.now += timedelta(seconds=1)  # a check within CACHE_TTL of the last one is cached
    keys.verify(secret)
    assert keys.list()[0]["last_used"] == first.isoformat()
    clock.now += timedelta(seconds=CACHE_TTL)
    keys.verify(secret)
    assert keys.list()[0]["last_used"] == clock.now.isoformat()


def test_a_revoked_key_is_refused_at_once_despite_the_cache(keys: ApiKeyService) -> None:
    doc = keys.create("bob")
    assert keys.verify(doc["key"]).key_id == doc["key_id"]  # now cached
    keys.revoke(doc["key_id"])
    with pytest.raises(AuthError, match="revoked"):
        keys.verify(doc["key"])


def test_list_all_or_one_account(keys: ApiKeyService) -> None:
    a = keys.create("alice", "a")
    b = keys.create("bob", "b")
    assert [k["key_id"] for k in keys.list()] == [a["key_id"], b["key_id"]]
    assert [k["key_id"] for k in keys.list("bob")] == [b["key_id"]]
    assert keys.list("carol") == []
    assert set(keys.list()[0]) == {
        "key_id",
        "account",
        "address",
        "label",
        "created",
        "last_used",
        "revoked",
        "scopes",
    }


def test_unknown_account_names_the_field_and_the_fix(keys: ApiKeyService) -> None:
    for call in (lambda: keys.create("mallory"), lambda: keys.list("mallory")):
        with pytest.raises(NotFoundError) as exc:
            call()
        assert exc.value.field == "account" and exc.value.value == "mallory"
        assert "alice" in exc.value.fix
    assert keys.list() == []


def test_overlong_label_is_refused(keys: ApiKeyService) -> None:
    with pytest.raises(ValidationError) as exc:
        keys.create("alice", "x" * 201)
    assert exc.value.field == "label"
    assert keys.list() == []


def test_revoked_key_is_refused_and_revoking_again_changes_nothing(
    keys: ApiKeyService, clock: Clock
) -> None:
    doc = keys.create("alice")
    revoked = keys.revoke(doc["key_id"])
    assert revoked["revoked"] == clock.now.isoformat()
    clock.now += timedelta(hours=1)
    assert keys.revoke(doc["key_id"]) == revoked
    with pytest.raises(AuthError, match="revoked") as exc:
        keys.verify(doc["key"])
    assert exc.value.http_status == 401 and "create a new API key" in exc.value.fix
    assert doc["key"] not in str(exc.value.to_dict())


def test_revoking_for_a_requester_needs_the_keys_account(keys: ApiKeyService) -> None:
    doc = keys.create("alice")
    bob = Principal("session", keys.create("bob")["address"], "bob", frozenset())
    with pytest.raises(ForbiddenError) as exc:
        keys.revoke(doc["key_id"], requester=bob)
    assert exc.value.http_status == 403 and doc["key_id"] in exc.value.message
    assert keys.verify(doc["key"]).account == "alice"  # still valid
    alice = Principal("session", doc["address"], "alice", frozenset())
    assert keys.revoke(doc["key_id"], requester=alice)["revoked"]


def test_revoke_unknown_key(keys: ApiKeyService) -> None:
    with pytest.raises(NotFoundError) as exc:
        keys.revoke("olk_nothere0")
    assert exc.value.value == "olk_nothere0" and exc.value.field == "key_id"
    assert "list the account's API keys" in exc.value.fix


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("", "No API key"),
        (None, "No API key"),
        ("sk-1234", "malformed"),
        ("olk_short", "malformed"),
        ("olk_" + "!" * (KEY_LEN - 4), "malformed"),
        ("olk_" + "A" * (KEY_LEN - 4), "Unknown API key"),
    ],
)
def test_bad_keys(keys: ApiKeyService, secret: str | None, message: str) -> None:
    keys.create("alice")
    with pytest.raises(AuthError, match=message) as exc:
        keys.verify(secret)
    assert exc.value.field == "Authorization" and exc.value.fix


def test_right_key_id_with_a_wrong_secret_is_unknown(keys: ApiKeyService) -> None:
    secret = keys.create("alice")["key"]
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(AuthError, match="Unknown API key"):
        keys.verify(forged)


@pytest.mark.parametrize("header", [None, "", "   ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer  "])
def test_bearer_header_missing_or_malformed(header: str | None) -> None:
    with pytest.raises(AuthError) as exc:
        bearer_secret(header)
    assert exc.value.field == "Authorization" and "Bearer" in exc.value.fix


def test_bearer_header_parsed() -> None:
    assert bearer_secret("Bearer olk_abc") == "olk_abc"
    assert bearer_secret("  bearer   olk_abc ") == "olk_abc"


# -- the FastAPI dependency -----------------------------------------------------------------


def _app(node: Node) -> FastAPI:
    app = create_app(node)
    router = APIRouter()

    @router.get("/test-whoami")
    def whoami(principal: PrincipalDep) -> dict[str, str]:
        return {
            "key_id": principal.key_id,
            "account": principal.account,
            "address": principal.address,
        }

    app.include_router(router)
    return app


def test_principal_dependency(node: Node) -> None:
    client = TestClient(_app(node))
    doc = node.api_keys.create("carol", "ci")
    r = client.get("/test-whoami", headers={"Authorization": f"Bearer {doc['key']}"})
    assert r.status_code == 200
    assert r.json() == {
        "key_id": doc["key_id"],
        "account": "carol",
        "address": node.accounts.address("carol"),
    }
    assert node.api_keys.list()[0]["last_used"] is not None

    r = client.get("/test-whoami")
    assert r.status_code == 401
    assert r.json()["error"] == "AuthError" and r.json()["field"] == "Authorization"
    assert "No API key" in r.json()["message"]

    r = client.get("/test-whoami", headers={"Authorization": f"Token {doc['key']}"})
    assert r.status_code == 401 and "Bearer <key>" in r.json()["message"]

    r = client.get("/test-whoami", headers={"Authorization": "Bearer olk_nope"})
    assert r.status_code == 401 and "malformed" in r.json()["message"]

    node.api_keys.revoke(doc["key_id"])
    r = client.get("/test-whoami", headers={"Authorization": f"Bearer {doc['key']}"})
    assert r.status_code == 401 and "revoked" in r.json()["message"]
