"""Metrics, request ids and request logs: a known workload through the API, then the values
read back from GET /metrics with prometheus-client's own text parser."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from openledger.app import create_app
from openledger.logs import JsonFormatter, TextFormatter
from openledger.node import Node
from openledger.store.factory_tables import JobRow
from openledger.units import OPEN
from tests.market import Market
from tests.tiny import register_models

pytestmark = pytest.mark.anvil

MODEL = "facts-lora"


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


@pytest.fixture
def api(market: Market, tiny_base_dir: Path, adapters_dir: Path) -> Iterator[tuple]:
    node: Node = market.node
    node.settings = replace(node.settings, serve_device="cpu", serve_max_ctx=64)
    register_models(
        node.db,
        str(tiny_base_dir),
        {MODEL: adapters_dir / "ad3"},
        owner=market.addr("dave"),
        price_in=20 * OPEN,
        price_out=30 * OPEN,
        first_id=1,
        snapshot_roots=market.model["snapshot_roots"],
    )
    keys = {who: node.api_keys.create(who, "paid")["key"] for who in ("grace", "heidi")}
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        yield node, client, keys


def test_known_workload_reads_back_from_metrics(
    api: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    node, client, keys = api
    grace = {"Authorization": f"Bearer {keys['grace']}"}
    heidi = {"Authorization": f"Bearer {keys['heidi']}"}
    with node.db.session() as s:  # jobs in two states
        for status in ("queued", "queued", "failed"):
            s.add(JobRow(kind="train", status=status, params={}, work_dir="/nowhere"))
    caplog.set_level(logging.INFO, logger="openledger.api")

    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert client.get("/no/such/route", headers={"X-Request-ID": "probe-1"}).status_code == 404
    body = {"model": MODEL, "prompt": "The sea", "max_tokens": 5, "temperature": 0}
    assert client.post("/v1/completions", json=body, headers=heidi).status_code == 402
    generated, receipts = 0, []
    for _ in range(4):
        r = client.post("/v1/completions", json=body, headers=grace)
        assert r.status_code == 200, r.text
        generated += r.json()["usage"]["completion_tokens"]
        receipts.append(r.json()["receipt_id"])
        assert len(r.headers["x-request-id"]) == 16
    fees = sum(int(client.get(f"/receipts/{rc}").json()["receipt"]["fee"]) for rc in receipts)
    epoch = node.epochs.close()
    assert epoch["epoch"] == 1
    node.sync_chain()

    m = scrape(client)

    def value(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    health = {"route": "/health", "method": "GET", "status": "200"}
    assert value("openledger_http_requests_total", **health) == 3
    assert (
        value("openledger_http_requests_total", route="unmatched", method="GET", status="404") == 1
    )
    paid = {"route": "/v1/completions", "method": "POST"}
    assert value("openledger_http_requests_total", **paid, status="200") == 4
    assert value("openledger_http_requests_total", **paid, status="402") == 1
    assert value("openledger_http_request_duration_seconds_count", **paid) == 5
    assert value("openledger_http_request_duration_seconds_bucket", **paid, le="+Inf") == 5
    assert value("openledger_serving_generated_tokens_total") == generated > 0
    assert value("openledger_serving_ttft_seconds_count") == 4
    assert value("openledger_serving_tpot_seconds_count") == 4  # each made >= 2 tokens
    assert value("openledger_serving_queue_depth") == 0
    assert value("openledger_serving_running_batch") == 0
    assert value("openledger_serving_adapter_hits_total", tier="device") == 3
    assert value("openledger_serving_adapter_misses_total", tier="device") == 1
    assert value("openledger_serving_adapter_loads_total", tier="device") == 1
    host = value("openledger_serving_adapter_hits_total", tier="host")
    assert host + value("openledger_serving_adapter_misses_total", tier="host") == 1
    assert value("openledger_serving_adapter_loads_total", tier="host") == 1
    assert value("openledger_ledger_receipts_total") == 4
    assert value("openledger_ledger_fees_open_total") == pytest.approx(fees / 10**18)
    assert value("openledger_ledger_holds_total") == 4
    assert value("openledger_ledger_holds_refused_total") == 1
    assert value("openledger_ledger_holds_in_flight") == 0
    assert value("openledger_ledger_pricing_batch_size_sum") == 4
    assert value("openledger_ledger_commit_group_size_sum") == 4
    assert value("openledger_epoch_last_sealed") == 1
    assert value("openledger_epoch_current") == 2
    assert value("openledger_epoch_root_postings_total") == 1
    assert value("openledger_chain_sync_lag_blocks") == 0
    assert value("openledger_chain_head_block") == node.client.block_number()
    assert value("openledger_chain_confirmed_block") == node.client.block_number()  # depth 0
    assert value("openledger_jobs", state="queued") == 2
    assert value("openledger_jobs", state="failed") == 1
    assert value("openledger_jobs", state="running") == 0

    lines = [r for r in caplog.records if r.name == "openledger.api"]
    assert all(len(getattr(r, "request_id", "")) > 0 for r in lines)
    probe = [r for r in lines if r.request_id == "probe-1"]
    assert len(probe) == 1 and probe[0].status == 404 and probe[0].route == "unmatched"
    paid_lines = [r for r in lines if getattr(r, "receipt_id", None)]
    assert [r.receipt_id for r in paid_lines] == receipts
    doc = json.loads(JsonFormatter().format(paid_lines[0]))
    assert doc["receipt_id"] == receipts[0] and doc["route"] == "/v1/completions"
    assert doc["status"] == 200 and doc["level"] == "info" and doc["request_id"]
    assert f"receipts {receipts[0]}" in TextFormatter().format(paid_lines[0])


def test_request_id_is_echoed_or_made(api: tuple) -> None:
    _, client, _ = api
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 16


def test_made_up_paths_and_methods_do_not_grow_the_metrics(api: tuple) -> None:
    _, client, _ = api
    for i in range(40):
        client.request(f"X{i}", f"/made/up/{i}")
        client.get(f"/made/up/{i}")
    samples = scrape(client)
    series = {
        dict(labels)["method"]
        for (name, labels) in samples
        if name == "openledger_http_requests_total"
    }
    assert series <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    other = (("method", "other"), ("route", "unmatched"), ("status", "404"))
    assert samples[("openledger_http_requests_total", other)] >= 40
    assert not any("/made/up/" in dict(labels).get("route", "") for (_, labels) in samples)
