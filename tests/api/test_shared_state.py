"""The trust boundary's state lives in the database, not in an API process: a SIWE nonce
issued by one process is taken (once) by another, a web session made by one works in the
other and survives a restart of either, a logout in one revokes it in both, and a write
prepared by one process for a wallet is reported to and recorded by the other. On SQLite
and, with ``OPENLEDGER_TEST_PG_URL``, on a real PostgreSQL (two nodes, each its own app,
caches and connection pool, on one database)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.config import Settings
from openledger.home import init_home
from openledger.node import Node
from openledger.web.sessions import COOKIE
from tests.conftest import PASSWORD, make_settings
from tests.store.conftest import db_url, pg_url, sqlite_url  # noqa: F401 - fixtures
from tests.web.injected import TestWallet

BASE = "http://127.0.0.1:8000"
WEB = {"X-OpenLedger-Web": "1"}
WALLET = Account.from_key("0x" + "43" * 32)


def _node(settings: Settings, home: Path, url: str) -> Node:
    s = replace(settings, home=home, db_url=url)
    init_home(s, PASSWORD)  # migrates the shared database once, keeps it after
    return Node(s, password_source=lambda: PASSWORD)


@pytest.fixture
def two(db_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:  # noqa: F811
    settings = make_settings(tmp_path / "a")
    a, b = _node(settings, tmp_path / "a", db_url), _node(settings, tmp_path / "b", db_url)
    yield a, b
    a.close()
    b.close()


def _client(node: Node) -> TestClient:
    return TestClient(create_app(node), base_url=BASE)


def _signed_in(c: TestClient, cookie: str) -> int:
    c.cookies.clear()
    c.cookies.set(COOKIE, cookie)
    return c.get("/web/api/keys").status_code


def test_nonces_and_sessions_are_shared_and_survive_a_restart(two: tuple[Node, Node]) -> None:
    a, b = two
    with _client(a) as ca, _client(b) as cb:
        text = ca.post("/web/auth/message", json={"address": WALLET.address}, headers=WEB).json()[
            "message"
        ]
        sig = WALLET.sign_message(encode_defunct(text=text)).signature.hex()
        signed = {"message": text, "signature": sig}
        r = cb.post("/web/auth/verify", json=signed, headers=WEB)  # A's nonce, taken by B
        assert r.status_code == 200, r.text
        assert r.json()["session"]["address"] == WALLET.address
        cookie = cb.cookies[COOKIE]
        r = ca.post("/web/auth/verify", json=signed, headers=WEB)  # and by nobody again
        assert r.status_code == 401 and "nonce" in r.json()["message"].lower()
        assert _signed_in(ca, cookie) == 200  # B's session works in A
    a.close()  # A restarts: a new node, app and pool on the same database
    restarted = Node(a.settings, password_source=lambda: PASSWORD)
    try:
        with _client(restarted) as ca2, _client(b) as cb:
            assert _signed_in(ca2, cookie) == 200
            assert _signed_in(cb, cookie) == 200
            assert cb.post("/web/auth/logout", headers=WEB).status_code == 200
            assert _signed_in(ca2, cookie) == 401  # revoked for every process
    finally:
        restarted.close()


@pytest.mark.anvil
def test_a_write_prepared_by_one_process_is_recorded_by_another(
    chain: Node,
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A script holding its own key and an API key: node A prepares its delegation, the
    script sends the transaction itself, node B (same database) checks it and records it;
    A then finds nothing waiting, and the same hash is refused for another write."""
    settings = replace(chain.settings, addresses_file=chain.settings.addresses_path)
    a, b = _node(settings, tmp_path / "a", db_url), _node(settings, tmp_path / "b", db_url)
    try:
        wallet = TestWallet(a, "0x" + "44" * 32)
        wallet.fund(chain)
        key = a.api_keys.create(wallet.address, "script", "read,write")["key"]
        auth = {"Authorization": f"Bearer {key}"}
        with _client(a) as ca, _client(b) as cb:
            r = ca.post("/governance/delegate", json={"delegatee": wallet.address}, headers=auth)
            assert r.status_code == 200, r.text
            prepared = r.json()["wallet"]
            assert [t["label"] for t in prepared["txs"]] == ["delegate"]
            waiting = cb.get("/wallet/pending", headers=auth).json()
            assert [w["pending"] for w in waiting["items"]] == [prepared["pending"]]
            tx = wallet.send(prepared["txs"][0])
            a.client.wait_receipt(tx, label="delegate")
            done = cb.post(
                "/wallet/submit",
                json={"pending": prepared["pending"], "hashes": [tx]},
                headers=auth,
            )
            assert done.status_code == 200, done.text
            token = a.contracts.token
            assert token.get_votes(wallet.address) == token.balance_of(wallet.address) > 0
            assert ca.get("/wallet/pending", headers=auth).json()["total"] == 0
            again = ca.post(
                "/governance/delegate", json={"delegatee": wallet.address}, headers=auth
            ).json()["wallet"]
            r = ca.post(
                "/wallet/submit", json={"pending": again["pending"], "hashes": [tx]}, headers=auth
            )
            assert r.status_code == 409 and r.json()["field"] == "tx_hash"
            assert [
                w["pending"] for w in cb.get("/wallet/pending", headers=auth).json()["items"]
            ] == [again["pending"]]
    finally:
        a.close()
        b.close()


def test_nul_characters_are_400_on_every_database(two: tuple[Node, Node]) -> None:
    """PostgreSQL refuses NUL in text (a 500 it was, from a JSON "\\u0000" or a %00 in the
    URL); the guard answers 400 naming where it was, before any route runs, on both."""
    a, _ = two
    with TestClient(create_app(a), base_url=BASE, raise_server_exceptions=False) as c:
        assert c.post("/web/auth/dev", json={"name": "alice"}, headers=WEB).status_code == 200
        r = c.post("/web/api/keys", json={"label": "a\u0000b"}, headers=WEB)
        assert r.status_code == 400 and r.json()["field"] == "body", r.text
        assert "NUL" in r.json()["message"]
        assert c.get("/web/api/keys").json()["items"] == []  # nothing was made
        for url, field in (
            ("/datanets/a%00b", "path"),
            ("/models/a%00b", "path"),
            ("/datanets?offset=0&x=%00", "query"),
        ):
            r = c.get(url)
            assert r.status_code == 400 and r.json()["field"] == field, (url, r.text)
        r = c.post("/v1/completions", json={"model": "m", "prompt": "a\u0000"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        assert c.get("/datanets?offset=0&x=%2500").status_code == 200  # '%00', no NUL
