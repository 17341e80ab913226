"""/jobs and /models over HTTP, with the node's job worker running the job in its own
process — the path `openledger serve` takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.factory.worker import JobWorker
from tests.conftest import World, operator_headers
from tests.factory.test_jobs import FAST, learnable_snapshot
from tests.servers import wait_until

pytestmark = pytest.mark.anvil


def test_queue_watch_publish(
    world: World,
    tiny_base_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny_base = tiny_base_dir
    node = world.node
    s = node.settings
    for key, value in {
        "OPENLEDGER_HOME": str(s.home),
        "OPENLEDGER_DB_URL": s.db_url,
        "OPENLEDGER_CHAIN_PORT": str(s.chain_port),
        "OPENLEDGER_ADDRESSES": str(s.addresses_path),
    }.items():
        monkeypatch.setenv(key, value)
    ref = learnable_snapshot(world)
    client = TestClient(
        create_app(node), raise_server_exceptions=False, headers=operator_headers(node)
    )

    bad = client.post("/jobs", json={"datanet": ref, "base": str(tiny_base), "config": {"rank": 0}})
    assert bad.status_code == 422 and bad.json()["field"] == "rank"
    assert client.post("/jobs", json={"datanet": "facts@7", "base": "x"}).status_code == 404

    job = client.post("/jobs", json={"datanet": ref, "base": str(tiny_base), "config": FAST})
    assert job.status_code == 201 and job.json()["status"] == "queued"
    job_id = job.json()["id"]
    worker = JobWorker(node.jobs, interval=0.2)
    worker.start()
    try:

        def ended() -> bool:
            return client.get(f"/jobs/{job_id}").json()["status"] in ("succeeded", "failed")

        wait_until(ended, timeout=240, every=0.5)
    finally:
        worker.stop()
    shown = client.get(f"/jobs/{job_id}").json()
    assert shown["status"] == "succeeded", shown
    metrics = client.get(f"/jobs/{job_id}/metrics").json()["items"]
    assert metrics[0]["step"] == 0 and metrics[-1]["step"] > 0
    png = client.get(f"/jobs/{job_id}/loss.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 409

    pub = client.post("/models", json={"job": job_id, "name": "caps-api", "as": "dave"})
    assert pub.status_code == 201, pub.text
    assert client.get("/models").json()["total"] == 1
    assert client.get("/models/caps-api").json()["adapter_sha256"] == pub.json()["adapter_sha256"]
    again = client.post("/models", json={"job": job_id, "name": "caps-api", "as": "dave"})
    assert again.status_code == 409
