"""The API shell: health, docs, and errors as JSON 4xx."""

from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from openledger.app import create_app
from openledger.config import Settings
from openledger.errors import NotFoundError, ValidationError
from openledger.http.bounds import AsField
from openledger.node import Node
from tests.conftest import free_port, operator_headers


def _app(home: Settings):
    app = create_app(Node(home))
    router = APIRouter()

    @router.get("/boom/{kind}")
    def boom(kind: str) -> dict:
        if kind == "missing":
            raise NotFoundError(
                "No datanet 'x'.", field="datanet", value="x", fix="create it first."
            )
        raise ValidationError(
            "Stake 'abc' is not a number.", field="stake", value="abc", fix="give OPEN as 1.5"
        )

    app.include_router(router)
    return app


def test_health_degraded_without_chain(home: Settings) -> None:
    from dataclasses import replace

    settings = replace(home, chain_url=f"http://127.0.0.1:{free_port()}")
    client = TestClient(create_app(Node(settings)))
    body = client.get("/health").json()
    assert body["status"] == "degraded" and body["store"]["ok"] is True
    assert body["chain"]["ok"] is False and "openledger chain up" in body["chain"]["fix"]


def test_health_ok_with_chain(devnet_node: Node) -> None:
    body = TestClient(create_app(devnet_node)).get("/health").json()
    assert body["status"] == "ok" and body["chain"]["chain_id"] == 31337


def test_errors_become_json_4xx(home: Settings) -> None:
    client = TestClient(_app(home), raise_server_exceptions=False)
    r = client.get("/boom/missing")
    assert r.status_code == 404
    assert r.json() == {
        "error": "NotFoundError",
        "message": "No datanet 'x'.",
        "field": "datanet",
        "value": "x",
        "fix": "create it first.",
    }
    r = client.get("/boom/bad")
    assert r.status_code == 422 and r.json()["field"] == "stake"


def test_openapi_docs(home: Settings) -> None:
    client = TestClient(create_app(Node(home)))
    assert client.get("/openapi.json").json()["info"]["title"] == "OpenLedger node"
    assert client.get("/docs").status_code == 200


def test_a_service_field_is_named_as_the_request_names_it(home: Settings) -> None:
    """A service says `account`; a route whose request takes it as `as` answers `as`, one
    that takes `account` itself keeps `account`."""
    node = Node(home)
    client = TestClient(create_app(node), raise_server_exceptions=False)
    body = {"name": "bees", "validators": [], "as": "mallory"}
    r = client.post("/datanets", json=body, headers=operator_headers(node))
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "as" and r.json()["value"] == "mallory"

    app = create_app(node)
    router = APIRouter()

    class Body(BaseModel):
        as_: AsField = None

    @router.post("/acting")
    def acting(body: Body) -> dict:
        raise NotFoundError("No account named 'x'.", field="account", value=body.as_)

    @router.get("/quote")
    def quote(account: str) -> dict:
        raise NotFoundError("No account named 'x'.", field="account", value=account)

    app.include_router(router)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/acting", json={"as": "x"}).json()["field"] == "as"
    assert client.get("/quote", params={"account": "x"}).json()["field"] == "account"
