"""The trust boundary, route by route: a test that cannot forget a route.

It walks the app's route table and, for every state-changing route (POST, PUT, PATCH,
DELETE), checks that no credential gets 401, that another account's credential gets 403,
that a valid web session from a foreign Origin gets 403 (and without the web app's header,
which a cross-site form cannot send, 401), and that after all of it nothing
changed: no row in any table, no blob, no block on the chain, no nonce or balance of the
accounts involved. Sign-in routes are the only writes without a credential; they are still
refused from a foreign Origin. Then the resources that belong to an account (jobs, keys,
receipts, prepared writes) are tried with another account's credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openledger.app import create_app
from openledger.store.models import Base
from openledger.units import OPEN
from tests.conftest import World, operator_headers

pytestmark = pytest.mark.anvil

BASE = "http://127.0.0.1:8000"
WEB = {"X-OpenLedger-Web": "1"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: writes that take no credential: they sign people in (still refused from another origin)
SIGN_IN = {"/web/auth/message", "/web/auth/verify", "/web/auth/dev"}
PARAMS = {
    "datanet": "facts",
    "contribution": "1",
    "proposal": "1",
    "grant": "1",
    "job": "1",
    "model": "facts-model",
    "key_id": "olk_00000000",
    "receipt": "1",
    "agent": "helper",
}


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    app = create_app(world.node)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        c.fastapi = app  # type: ignore[attr-defined]
        yield c


def state_changing(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the app that may change state, included routers and all."""
    out = []
    for route in iter_route_contexts(app.routes):
        out += [(m, route.path) for m in sorted((route.methods or set()) & UNSAFE)]
    return sorted(set(out))


def url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)


def send(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    query: str = "",
    cookies: dict[str, str] | None = None,
) -> Any:
    target = url(path) + query
    client.cookies.clear()
    for k, v in (cookies or {}).items():
        client.cookies.set(k, v)
    if path.endswith("/contributions") and path.startswith("/datanets"):
        files = [("files", ("a.txt", b"Some new fact about the sea floor.", "text/plain"))]
        return client.request(
            method, target, headers=headers, files=files, data={"stake": "10", "as": "alice"}
        )
    if path.startswith("/web/api/datanets/") and path.endswith("/contributions"):
        files = [("files", ("a.txt", b"Some new fact about the sea floor.", "text/plain"))]
        return client.request(method, target, headers=headers, files=files, data={"stake": "10"})
    return client.request(method, target, headers=headers, json={"as": "alice"})


def footprint(w: World) -> dict[str, Any]:
    node = w.node
    with node.db.session() as s:
        rows = {
            t.name: s.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables
        }
    eth = node.client.w3.eth
    people = {n: node.accounts.address(n) for n in ("alice", "bob", "operator")}
    return {
        "rows": rows,
        "blobs": sorted(node.blobs.iter_hashes()),
        "block": eth.block_number,
        "nonces": {n: eth.get_transaction_count(a) for n, a in people.items()},
        "open": {n: node.contracts.token.balance_of(a) for n, a in people.items()},
    }


def test_every_state_changing_route_refuses_who_may_not_write(
    client: TestClient, world: World
) -> None:
    node = world.node
    routes = state_changing(client.fastapi)  # type: ignore[attr-defined]
    assert len(routes) >= 45  # the table is read from the app, not written here
    bob_key = node.api_keys.create("bob", "attacker", "inference,read,write")["key"]
    bob = {"Authorization": f"Bearer {bob_key}"}
    signed_in = client.post("/web/auth/dev", json={"name": "bob"}, headers=WEB)
    assert signed_in.status_code == 200
    session = {"ol_session": client.cookies["ol_session"]}
    before = footprint(world)

    problems = []
    for method, path in routes:
        web = path.startswith("/web/")
        if path not in SIGN_IN:
            r = send(client, method, path, WEB if web else {})
            if r.status_code != 401:
                problems.append(f"{method} {path} without a credential: {r.status_code}")
            if web:  # bob's session, acting for alice
                r = send(client, method, path, WEB, "?as=alice", session)
            else:  # bob's API key (write scope), acting for alice
                r = send(client, method, path, bob, "?as=alice")
            if r.status_code != 403:
                problems.append(
                    f"{method} {path} as alice with bob's credential: "
                    f"{r.status_code} {r.text[:120]}"
                )
            if web:  # bob's own session, without the web app's header (a browser that
                r = send(client, method, path, {}, "", session)  # sends no Origin)
                if r.status_code != 401 or r.json().get("field") != "x-openledger-web":
                    problems.append(
                        f"{method} {path} without the web app's header: "
                        f"{r.status_code} {r.text[:120]}"
                    )
        foreign = {**WEB, "Origin": "http://evil.example"}
        r = send(client, method, path, foreign, "", session)
        body = r.json()
        field = body["error"]["param"] if path.startswith("/v1/") else body.get("field")
        if r.status_code != 403 or field != "Origin":
            problems.append(f"{method} {path} from a foreign origin: {r.status_code}")
    assert problems == []
    assert footprint(world) == before


def test_the_openapi_schema_declares_each_routes_credential(client: TestClient) -> None:
    """Every state-changing route is in the schema and declares its credential (the bearer
    credential for the API, the session cookie for the web app); sign-ins declare none; any
    route that answers 401 to a request without a credential declares one."""
    app = client.fastapi  # type: ignore[attr-defined]
    schema = app.openapi()
    schemes = schema["components"]["securitySchemes"]
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "ol_session")
    declared = {
        (m.upper(), re.sub(r"\{(\w+):\w+\}", r"{\1}", path)): {
            k for s in op.get("security", []) for k in s
        }
        for path, ops in schema["paths"].items()
        for m, op in ops.items()
    }
    problems = []
    for method, path in state_changing(app):
        want = set() if path in SIGN_IN else {"session" if path.startswith("/web/") else "bearer"}
        got = declared.get((method, path))
        if got != want:
            problems.append(f"{method} {path} declares {got}, not {want}")
    # the reads: a 401 without a credential is a credential the schema must name
    params = {
        **PARAMS,
        "version": "1",
        "number": "1",
        "name": "x",
        "path": "config.json",
        "account": "0x" + "11" * 20,
        "address": "0x" + "22" * 20,
    }
    reads = [(m, p) for m, p in declared if m == "GET"]
    assert len(reads) >= 30
    private = 0
    for method, path in reads:
        client.cookies.clear()
        target = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)
        if client.request(method, target, headers=WEB).status_code == 401:
            private += 1
            if not declared[(method, path)]:
                problems.append(f"{method} {path} answers 401 and declares no credential")
    assert problems == []
    assert private >= 10  # /v1, receipts, credit, the web app's own pages of an account


def test_an_accounts_own_things_refuse_another_accounts_credential(
    client: TestClient, world: World
) -> None:
    node = world.node
    alice_key = node.api_keys.create("alice", "", "inference,read,write")
    bob = {"Authorization": "Bearer " + node.api_keys.create("bob", "", "read,write")["key"]}
    # alice's job: bob can neither cancel, resume nor publish it
    snap = node.snapshots  # a job needs a snapshot: alice's approved contribution
    cid = node.contributions.contribute(
        "facts",
        [world.write("a.txt", "Octopuses have three hearts and blue blood.")],
        stake=10 * OPEN,
        signer=node.accounts.signer("alice"),
    ).contribution_id
    for v in ("bob", "carol"):
        node.reviews.review(cid, signer=node.accounts.signer(v), approve=True)
    snap.snapshot("facts", signer=node.accounts.signer("dave"))
    job = client.post(
        "/jobs",
        json={"datanet": "facts@1", "base": "hub/some-model"},
        headers={"Authorization": f"Bearer {alice_key['key']}"},
    )
    assert job.status_code == 201 and job.json()["owner"] == node.accounts.address("alice")
    jid = job.json()["id"]
    for path in (f"/jobs/{jid}/cancel", f"/jobs/{jid}/resume"):
        r = client.post(path, headers=bob)
        assert r.status_code == 403 and "job" in r.json()["message"], path
    r = client.post("/models", json={"job": jid, "name": "stolen"}, headers=bob)
    assert r.status_code == 403
    assert node.jobs.get(jid)["status"] == "queued"
    # the body's "as" naming another account, with bob's key
    r = client.post(
        f"/datanets/facts/contributions/{cid}/withdraw", json={"as": "alice"}, headers=bob
    )
    assert r.status_code == 403 and r.json()["field"] == "as"
    # the operator token may name a node account; an API key may not name even its own
    # node's operator
    op = operator_headers(node)
    assert (
        client.post(
            "/governance/delegate", json={"as": "grace", "delegatee": "bob"}, headers=bob
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/governance/delegate", json={"as": "grace", "delegatee": "grace"}, headers=op
        ).status_code
        == 200
    )
    # alice's API key, revoked from bob's web session: 403, and it still works
    client.post("/web/auth/dev", json={"name": "bob"}, headers=WEB)
    for path in (f"/web/api/jobs/{jid}/cancel", f"/web/api/jobs/{jid}/resume"):
        r = client.post(path, headers=WEB)  # nor from his web session
        assert r.status_code == 403 and f"job {jid}" in r.json()["message"], path
    assert node.jobs.get(jid)["status"] == "queued"
    r = client.post(f"/web/api/keys/{alice_key['key_id']}/revoke", headers=WEB)
    assert r.status_code == 403
    assert node.api_keys.verify(alice_key["key"]).account == "alice"
    # a prepared write is reported by its own account only (bob's wallet-less session gets
    # no prepared write of alice's)
    r = client.post("/wallet/submit", json={"pending": "x" * 24, "hashes": []}, headers=bob)
    assert r.status_code == 404


def test_off_the_devnet_the_node_signs_only_as_the_operator(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = world.node
    alice = {"Authorization": "Bearer " + node.api_keys.create("alice", "", "write")["key"]}
    token = node.contracts.token.contract.functions
    body = {"delegatee": "bob"}
    # on the devnet the node holds alice's (public) dev key and signs for her
    r = client.post("/governance/delegate", json=body, headers=alice)
    assert r.status_code == 200 and "wallet" not in r.json(), r.text
    assert token.delegates(node.accounts.address("alice")).call() == node.accounts.address("bob")
    monkeypatch.setattr(node, "settings", replace(node.settings, chain_id=10))
    before = footprint(world)
    # ... off it, not even the operator token makes the node sign as her
    r = client.post(
        "/governance/delegate", json={**body, "as": "alice"}, headers=operator_headers(node)
    )
    assert r.status_code == 403 and r.json()["field"] == "as", r.text
    assert "signs only as the operator" in r.json()["message"]
    # and her own key gets the write prepared for her wallet to sign and send
    r = client.post("/governance/delegate", json={"delegatee": "carol"}, headers=alice)
    assert r.status_code == 200, r.text
    wallet = r.json()["wallet"]
    assert wallet["pending"] and [t["from"].lower() for t in wallet["txs"]] == [
        node.accounts.address("alice").lower()
    ]
    after = footprint(world)
    assert after["rows"].pop("prepared_writes") == before["rows"].pop("prepared_writes") + 1
    assert after == before  # nothing sent: no block, no nonce, no balance moved
    assert token.delegates(node.accounts.address("alice")).call() == node.accounts.address("bob")
