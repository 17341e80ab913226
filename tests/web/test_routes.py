"""The web app's HTTP surface without a chain: the page and its assets (nothing from another
host), SIWE sign-in over HTTP with a wallet key, the session cookie, the web app's header on
writes, and errors as JSON messages (never a stack trace)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.config import Settings
from openledger.node import Node
from openledger.web.auth import host_allowed
from openledger.web.pages import STATIC
from openledger.web.sessions import COOKIE
from tests.conftest import PASSWORD

WEB = {"X-OpenLedger-Web": "1"}
WALLET = Account.from_key("0x" + "42" * 32)


@pytest.fixture
def client(home: Settings) -> Iterator[TestClient]:
    node = Node(home, password_source=lambda: PASSWORD)
    with TestClient(create_app(node), base_url="http://127.0.0.1:8000") as c:
        yield c
    node.close()


def test_the_page_and_every_asset_come_from_the_node(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport"' in page.text
    assets = [p for p in STATIC.rglob("*") if p.is_file()]
    assert len(assets) >= 10
    for path in assets:
        rel = path.relative_to(STATIC).as_posix()
        r = client.get(f"/web/static/{rel}")
        assert r.status_code == 200, rel
        # no script, style, font or image from another host (links to docs are in-node too)
        assert not re.search(r"""(src|href|url|import)\s*[=(]?\s*["']?https?://""", r.text), rel
        assert "cdn" not in r.text.lower(), rel
    assert client.get("/favicon.ico").status_code == 200


def test_wallet_sign_in_over_http(client: TestClient) -> None:
    r = client.post("/web/auth/message", json={"address": WALLET.address.lower()}, headers=WEB)
    text = r.json()["message"]
    assert text.startswith(
        f"127.0.0.1:8000 wants you to sign in with your Ethereum account:\n{WALLET.address}\n"
    )
    assert "URI: http://127.0.0.1:8000\n" in text and "Chain ID: 31337\n" in text
    sig = WALLET.sign_message(encode_defunct(text=text)).signature.hex()
    r = client.post("/web/auth/verify", json={"message": text, "signature": sig}, headers=WEB)
    assert r.status_code == 200, r.text
    assert r.json()["session"]["address"] == WALLET.address and r.json()["session"]["dev"] is None
    assert "httponly" in r.headers["set-cookie"].lower()
    assert client.get("/web/auth/session").json()["signed_in"]
    again = client.post("/web/auth/verify", json={"message": text, "signature": sig}, headers=WEB)
    assert again.status_code == 401 and "already used" in again.json()["message"]
    # the node holds no key for a wallet, yet a write goes on to the service's checks (the
    # wallet sends the transaction: tests/web/test_wallet.py)
    r = client.post("/web/api/contributions/1/review", json={"approve": True}, headers=WEB)
    assert r.status_code == 404 and "holds no key" not in r.json()["message"]


def test_a_message_for_another_host_is_refused(client: TestClient) -> None:
    r = client.post("/web/auth/message", json={"address": WALLET.address}, headers=WEB)
    text = r.json()["message"].replace("127.0.0.1:8000", "evil.example")
    sig = WALLET.sign_message(encode_defunct(text=text)).signature.hex()
    r = client.post("/web/auth/verify", json={"message": text, "signature": sig}, headers=WEB)
    assert r.status_code == 401 and "not this node" in r.json()["message"]
    assert COOKIE not in client.cookies


def test_sign_ins_only_for_the_nodes_own_host_and_port(client: TestClient, home: Settings) -> None:
    """A message signed for evil.example, relayed with ``Host: evil.example``, is refused:
    the Host header is not trusted; only the configured api_host:api_port (any loopback name
    for a loopback host) and web_hosts are, and another loopback port is another site."""
    evil = {**WEB, "Host": "evil.example"}
    r = client.post("/web/auth/message", json={"address": WALLET.address}, headers=evil)
    assert r.status_code == 401 and "does not take sign-ins for the host" in r.json()["message"]
    assert client.post("/web/auth/dev", json={"name": "bob"}, headers=evil).status_code == 401
    other_port = {**WEB, "Host": "127.0.0.1:8001"}
    r = client.post("/web/auth/message", json={"address": WALLET.address}, headers=other_port)
    assert r.status_code == 401 and "127.0.0.1:8000" in r.json()["fix"]
    assert host_allowed("localhost:8000", home) and host_allowed("[::1]:8000", home)
    assert not host_allowed("localhost:8001", home)
    configured = replace(home, web_hosts="node.example:443, other.example:80")
    assert host_allowed("node.example:443", configured)
    assert not host_allowed("node.example:444", configured)


def test_logout_revokes_the_session_everywhere(client: TestClient) -> None:
    client.post("/web/auth/dev", json={"name": "bob"}, headers=WEB)
    cookie = client.cookies[COOKIE]
    assert client.get("/web/api/me").status_code == 200
    assert client.post("/web/auth/logout", headers=WEB).json()["signed_in"] is False
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)  # a copy of the cookie kept from before the logout
    r = client.get("/web/api/me")
    assert r.status_code == 401 and r.json()["field"] == "session"
    assert client.post("/web/auth/logout", headers=WEB).status_code == 401


def test_a_write_from_another_origin_is_refused_before_anything(client: TestClient) -> None:
    client.post("/web/auth/dev", json={"name": "alice"}, headers=WEB)
    for origin in ("http://evil.example", "http://127.0.0.1:8001", "null"):
        r = client.post("/web/api/keys", json={"label": "x"}, headers={**WEB, "Origin": origin})
        assert r.status_code == 403 and r.json()["field"] == "Origin", origin
    r = client.post("/web/api/keys", json={}, headers={**WEB, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert client.get("/web/api/keys").json()["items"] == []  # nothing was made
    own = client.post("/web/api/keys", json={}, headers={**WEB, "Origin": "http://127.0.0.1:8000"})
    assert own.status_code == 201 and own.json()["scopes"] == ["inference", "read"]


def test_bad_input_is_a_json_message(client: TestClient) -> None:
    client.post("/web/auth/dev", json={"name": "alice"}, headers=WEB)
    r = client.post("/web/api/chat", json={"model": "x", "messages": []}, headers=WEB)
    assert r.status_code == 422 and r.json()["message"] == "Write a message first."
    r = client.post("/web/api/deposit", json={"amount": "lots"}, headers=WEB)
    assert r.status_code == 422 and r.json()["field"] == "amount"
