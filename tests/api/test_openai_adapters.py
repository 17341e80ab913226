"""/v1 with adapters that cannot be served: a 4xx JSON error for that request while the rest
of its batch keeps running; /v1/models says where each adapter is."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.node import Node
from tests.servers import wait_until
from tests.tiny import serving_node


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, tiny_base_dir: Path, adapters_dir: Path
) -> Iterator[tuple[Node, TestClient]]:
    root = tmp_path_factory.mktemp("bad-adapters")
    broken = root / "broken"
    shutil.copytree(adapters_dir / "ad1", broken)
    data = (broken / "adapter_model.safetensors").read_bytes()
    (broken / "adapter_model.safetensors").write_bytes(data[: len(data) // 3])  # truncated
    node = serving_node(
        root / "home",
        tiny_base_dir,
        {"good": adapters_dir / "ad0", "broken": broken},
        serve_max_ctx=96,
        serve_max_batch=4,
    )
    key = node.api_keys.create("alice", "tests")["key"]
    with TestClient(create_app(node), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield node, c
    node.close()


def test_a_broken_adapter_is_a_4xx_and_the_batch_keeps_running(
    client: tuple[Node, TestClient],
) -> None:
    node, c = client
    result: dict = {}

    def long_request() -> None:
        body = {
            "model": "good",
            "prompt": "The river",
            "max_tokens": 90,
            "temperature": 0,
            "ignore_eos": True,
        }
        result["response"] = c.post("/v1/completions", json=body)

    worker = threading.Thread(target=long_request)
    worker.start()
    wait_until(
        lambda: node.serving._engine is not None and node.serving.engine.stats()["running"],
        timeout=60,
    )  # the good request started
    steps_before = node.serving.engine.steps
    r = c.post("/v1/completions", json={"model": "broken", "prompt": "Hi", "max_tokens": 4})
    assert r.status_code == 400, r.text  # a ValidationError is OpenAI's 400 under /v1
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "adapter"
    assert "adapter_model.safetensors" in error["message"] and "cannot be read" in error["message"]
    assert str(node.models.get("broken")["adapter_dir"]) in error["message"]
    worker.join(120)
    good = result["response"]
    assert good.status_code == 200, good.text
    choice = good.json()["choices"][0]
    assert choice["finish_reason"] == "length" and good.json()["usage"]["completion_tokens"] == 90
    assert node.serving.engine.steps > steps_before  # it kept decoding meanwhile
    models = {m["id"]: m for m in c.get("/v1/models").json()["data"]}
    assert models["good"]["tier"] == "device" and models["good"]["loaded"] is True
    assert models["broken"]["tier"] == "disk" and models["broken"]["loaded"] is False
    listing = c.get("/v1/models").json()["serving"]
    assert listing["engine"] == "native" and listing["warning"] is None
    assert listing["tiers"]["host_tier_capacity_bytes"] == node.settings.serve_host_tier_mb << 20
