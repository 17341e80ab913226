"""The web app's HTTP surface without a chain: the page and its assets (nothing from another
host), SIWE sign-in over HTTP with a wallet key, the session cookie, the web app's header on
writes, and errors as JSON messages (never a stack trace)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from openledger.api.app import create_app
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
    assert text.startswith("127.0.0.1:8000 wants you to sign in with your Ethereum account:\n"
                           f"{WALLET.address}\n")  # fmt: skip
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


def test_sign_ins_only_for_the_nodes_own_host_names(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message signed for evil.example, relayed with ``Host: evil.example``, is refused:
    the Host header is not trusted, only loopback names or OPENLEDGER_WEB_HOSTS."""
    evil = {**WEB, "Host": "evil.example"}
    r = client.post("/web/auth/message", json={"address": WALLET.address}, headers=evil)
    assert r.status_code == 401 and "does not take sign-ins for the host" in r.json()["message"]
    assert client.post("/web/auth/dev", json={"name": "bob"}, headers=evil).status_code == 401
    assert host_allowed("localhost:8000", None) and host_allowed("[::1]:8000", None)
    monkeypatch.setenv("OPENLEDGER_WEB_HOSTS", "node.example:443, other.example")
    r = client.post("/web/auth/message", json={"address": WALLET.address},
                    headers={**WEB, "Host": "node.example:443"})  # fmt: skip
    assert r.status_code == 200 and r.json()["message"].startswith("node.example:443 wants")
    assert not host_allowed("127.0.0.1:8000", "node.example:443")


def test_sessions_and_the_web_apps_header(client: TestClient, home: Settings) -> None:
    r = client.get("/web/api/me")
    assert r.status_code == 401 and r.json()["message"].startswith("You are not signed in")
    r = client.post("/web/auth/dev", json={"name": "bob"})  # not from the web app
    assert r.status_code == 401 and r.json()["field"] == "x-openledger-web"
    r = client.post("/web/auth/dev", json={"name": "mallory"}, headers=WEB)
    assert r.status_code == 404 and "alice" in r.json()["fix"]
    r = client.post("/web/auth/dev", json={"name": "bob"}, headers=WEB)
    assert r.json()["session"]["dev"] == "bob"
    assert client.post("/web/api/claim").status_code == 401  # a write without the header
    tampered = client.cookies[COOKIE][:-2] + "xx"
    client.cookies.clear()
    client.cookies.set(COOKIE, tampered)
    assert client.get("/web/auth/session").json()["signed_in"] is False
    assert (Path(home.home) / "web" / "session.key").stat().st_mode & 0o777 == 0o600


def test_bad_input_is_a_json_message(client: TestClient) -> None:
    client.post("/web/auth/dev", json={"name": "alice"}, headers=WEB)
    r = client.post("/web/api/chat", json={"model": "x", "messages": []}, headers=WEB)
    assert r.status_code == 422 and r.json()["message"] == "Write a message first."
    r = client.post("/web/api/deposit", json={"amount": "lots"}, headers=WEB)
    assert r.status_code == 422 and r.json()["field"] == "amount"
