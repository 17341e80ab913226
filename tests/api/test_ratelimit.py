"""Rate limits: 429 with Retry-After, per API key (or account) and per client address, on
sign-in, key creation and the paid routes; every limit set from the node's settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from openledger.api.ratelimit import Limits, RateLimiter, parse_rate
from openledger.app import create_app
from openledger.config import Settings
from openledger.errors import ConfigError, RateLimitedError
from openledger.node import Node
from tests.conftest import PASSWORD

WEB = {"X-OpenLedger-Web": "1"}
BASE = "http://127.0.0.1:8000"
ADDRESS = "0x" + "42" * 20
UNSUPPORTED = {"model": "m", "prompt": "hi", "echo": True}  # refused after the limit (400)


def test_a_bucket_lets_n_through_then_says_when_to_come_back() -> None:
    now = [100.0]
    limiter = RateLimiter(parse_rate("3/60", "rate_paid"), "paid requests", lambda: now[0])
    for _ in range(3):
        limiter.hit("k")
    with pytest.raises(RateLimitedError) as err:
        limiter.hit("k")
    e = err.value
    assert e.http_status == 429 and e.retry_after == 20 and e.value == "3/60"
    assert "at most 3 every 60 s" in e.message and "wait 20 s" in e.fix
    limiter.hit("other")  # buckets are per key
    now[0] += 19
    with pytest.raises(RateLimitedError) as err:
        limiter.hit("k")
    assert err.value.retry_after == 1
    now[0] += 1
    limiter.hit("k")  # one request's worth came back after 20 s
    off = RateLimiter(parse_rate("0", "rate_paid"), "paid requests")
    for _ in range(1000):
        off.hit("k")


@pytest.mark.parametrize("text", ["ten", "5", "5/0", "-1/60", "3/inf", "1/x"])
def test_a_malformed_limit_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        Limits("30/60", "10/3600", "1200/60", paid_ip=text)
    assert err.value.field == "rate_paid_ip" and "N/SECONDS" in err.value.message


@contextmanager
def served(home: Settings, **rates: str) -> Iterator[tuple[Node, TestClient]]:
    node = Node(replace(home, **rates), password_source=lambda: PASSWORD)
    app = create_app(node)
    try:
        with TestClient(app, base_url=BASE, client=("10.0.0.1", 5000)) as c:
            c.app_ = app  # type: ignore[attr-defined]
            yield node, c
    finally:
        node.close()


def other_address(c: TestClient, host: str) -> TestClient:
    """A client of the same app from another address."""
    return TestClient(c.app_, base_url=BASE, client=(host, 5000))  # type: ignore[attr-defined]


def assert_429(r: object, retry_after: int | None = None) -> dict:
    assert r.status_code == 429, r.text  # type: ignore[attr-defined]
    seconds = int(r.headers["Retry-After"])  # type: ignore[attr-defined]
    assert seconds >= 1 and (retry_after is None or seconds == retry_after)
    return r.json()  # type: ignore[attr-defined]


def test_sign_in_is_limited_per_client_address(home: Settings) -> None:
    with served(home, rate_signin="2/60") as (_node, c):
        for _ in range(2):
            r = c.post("/web/auth/message", json={"address": ADDRESS}, headers=WEB)
            assert r.status_code == 200, r.text
        body = assert_429(c.post("/web/auth/dev", json={"name": "alice"}, headers=WEB), 30)
        assert body["error"] == "RateLimitedError" and body["field"] == "rate"
        assert "sign-in requests" in body["message"]
        with other_address(c, "10.0.0.2") as elsewhere:  # another address has its own
            r = elsewhere.post("/web/auth/message", json={"address": ADDRESS}, headers=WEB)
            assert r.status_code == 200


def sign_in(c: TestClient, name: str) -> None:
    c.cookies.clear()
    assert c.post("/web/auth/dev", json={"name": name}, headers=WEB).status_code == 200


def test_key_creation_is_limited_per_account_and_per_address(home: Settings) -> None:
    with served(home, rate_keys="1/3600", rate_keys_ip="2/3600") as (node, c):
        sign_in(c, "alice")
        assert c.post("/web/api/keys", json={"label": "a"}, headers=WEB).status_code == 201
        body = assert_429(c.post("/web/api/keys", json={"label": "b"}, headers=WEB), 3600)
        assert "API keys created" in body["message"]
        sign_in(c, "bob")  # another account from the same address: its own bucket ...
        assert c.post("/web/api/keys", json={"label": "c"}, headers=WEB).status_code == 201
        sign_in(c, "carol")  # ... until the address's bucket is empty
        body = assert_429(c.post("/web/api/keys", json={"label": "d"}, headers=WEB))
        assert "from this address" in body["message"]
        assert [len(node.api_keys.list(n)) for n in ("alice", "bob", "carol")] == [1, 1, 0]


def test_paid_routes_are_limited_per_key_and_per_address(home: Settings) -> None:
    with served(home, rate_paid="2/60", rate_paid_ip="3/60") as (node, c):
        keys = [node.api_keys.create(n, "app")["key"] for n in ("alice", "bob")]
        alice, bob = ({"Authorization": f"Bearer {k}"} for k in keys)
        for path in ("/v1/completions", "/v1/completions"):
            r = c.post(path, json=UNSUPPORTED, headers=alice)
            assert r.status_code == 400 and r.json()["error"]["param"] == "echo"  # let through
        body = assert_429(c.post("/v1/completions", json=UNSUPPORTED, headers=alice), 30)
        error = body["error"]  # OpenAI's format under /v1
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "echo": True}
        assert c.post("/v1/chat/completions", json=chat, headers=bob).status_code == 400
        body = assert_429(c.post("/v1/chat/completions", json=chat, headers=bob))
        assert "from this address" in body["error"]["message"]  # 3 from 10.0.0.1
        with other_address(c, "10.0.0.3") as elsewhere:  # bob from elsewhere: his key's
            assert (
                elsewhere.post("/v1/completions", json=UNSUPPORTED, headers=bob).status_code == 400
            )
            assert_429(elsewhere.post("/v1/completions", json=UNSUPPORTED, headers=bob))
        # the playground's paid chat counts per signed-in account
        with other_address(c, "10.0.0.4") as web:
            sign_in(web, "carol")
            turn = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(2):
                assert web.post("/web/api/chat", json=turn, headers=WEB).status_code == 404
            assert_429(web.post("/web/api/chat", json=turn, headers=WEB))
