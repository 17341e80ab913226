"""/datanets over HTTP: the same services, JSON in and out, errors as 4xx."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from tests.conftest import World, operator_headers

pytestmark = pytest.mark.anvil

TEXT = "Saturn's moon Titan has lakes of liquid methane and ethane on its surface."


@pytest.fixture
def client(world: World) -> TestClient:
    return TestClient(
        create_app(world.node), raise_server_exceptions=False, headers=operator_headers(world.node)
    )


def test_create_list_show(client: TestClient) -> None:
    r = client.post(
        "/datanets",
        json={"name": "space", "validators": ["bob"], "quorum": 1, "min_stake": "10", "as": "dave"},
    )
    assert r.status_code == 201, r.text
    page = client.get("/datanets", params={"limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert client.get("/datanets/space").json()["validators"] == [
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    ]
    dup = client.post("/datanets", json={"name": "space", "validators": ["bob"], "as": "dave"})
    assert dup.status_code == 409 and dup.json()["field"] == "name"
    assert client.get("/datanets/nope").status_code == 404
    assert client.get("/datanets", params={"limit": 0}).status_code == 422


def test_contribute_review_snapshot_export(client: TestClient) -> None:
    files = [("files", ("titan.txt", TEXT.encode(), "text/plain"))]
    r = client.post(
        "/datanets/facts/contributions", files=files, data={"stake": "10", "as": "alice"}
    )
    assert r.status_code == 201, r.text
    cid = r.json()["contribution_id"]
    shown = client.get(f"/datanets/facts/contributions/{cid}").json()
    assert [(f["name"], f["records"]) for f in shown["files"]] == [("titan.txt", 1)]
    pending = client.get("/datanets/facts/contributions", params={"status": "pending"}).json()
    assert pending["total"] == 1 and pending["items"][0]["previews"][0]["text"].startswith("Saturn")
    for v in ("bob", "carol"):
        rv = client.post(
            f"/datanets/facts/contributions/{cid}/reviews", json={"approve": True, "as": v}
        )
        assert rv.status_code == 200, rv.text
    assert client.get(f"/datanets/facts/contributions/{cid}").json()["status"] == "approved"
    snap = client.post("/datanets/facts/snapshots", json={"as": "dave"})
    assert snap.status_code == 201 and snap.json()["version"] == 1
    export = client.get("/datanets/facts/snapshots/1/export", params={"format": "jsonl"})
    assert export.status_code == 200
    assert json.loads(export.text.splitlines()[0])["text"] == TEXT


def test_bad_upload_is_422_with_the_file_and_line(client: TestClient) -> None:
    files = [("files", ("rows.jsonl", b'{"text": "ok"}\n{"text": oops}\n', "application/json"))]
    r = client.post(
        "/datanets/facts/contributions", files=files, data={"stake": "10", "as": "alice"}
    )
    assert r.status_code == 422
    body = r.json()
    assert "rows.jsonl" in body["message"] and "line 2" in body["message"]
    assert "-rows.jsonl" not in body["message"]  # the uploaded name, not the temporary file's
    bad_stake = client.post(
        "/datanets/facts/contributions", files=files, data={"stake": "ten", "as": "alice"}
    )
    assert bad_stake.status_code == 422 and bad_stake.json()["field"] == "stake"
