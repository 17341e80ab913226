"""The official ``openai`` client, unchanged, against a node's /v1 on a real uvicorn server
(the tiny base on the OpenLoRA engine): many clients at once, and clients that hang up free
the engine's rows and slots."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from openledger.app import create_app
from openledger.node import Node
from tests.servers import serve_in_thread, wait_until
from tests.tiny import serving_node

MAX_BATCH = 4
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]


@dataclass
class Served:
    node: Node
    url: str
    key: str

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key, max_retries=0)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> Iterator[Served]:
    node = serving_node(
        tmp_path_factory.mktemp("openai-e2e") / "home",
        tiny_base_dir,
        {"ad1": adapters_dir / "ad1", "ad6": adapters_dir / "ad6"},
        serve_max_batch=MAX_BATCH,
    )
    key = node.api_keys.create("bob", "e2e")["key"]
    try:
        with serve_in_thread(create_app(node)) as url:
            yield Served(node, url, key)
    finally:
        node.close()


def test_models_and_completions(served: Served) -> None:
    client = served.client()
    models = {m.id: m for m in client.models.list()}
    assert sorted(models) == ["ad1", "ad6"]
    assert models["ad1"].owned_by == "0x" + "ab" * 20
    assert client.models.retrieve("ad6").id == "ad6"

    args: dict[str, Any] = {
        "model": "ad1",
        "prompt": "The sea",
        "max_tokens": 6,
        "seed": 11,
        "extra_body": {"ignore_eos": True},
    }
    plain = client.completions.create(**args)
    assert plain.id.startswith("cmpl-") and plain.object == "text_completion"
    assert plain.usage is not None and plain.usage.completion_tokens == 6
    assert plain.choices[0].finish_reason == "length"
    chunks = list(client.completions.create(**args, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == plain.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_chat_completions(served: Served) -> None:
    client = served.client()
    args: dict[str, Any] = {
        "model": "ad6",
        "messages": CHAT,
        "max_completion_tokens": 5,
        "temperature": 0.7,
        "seed": 2,
        "extra_body": {"ignore_eos": True},
    }
    plain = client.chat.completions.create(**args)
    assert plain.object == "chat.completion" and plain.id.startswith("chatcmpl-")
    message = plain.choices[0].message
    assert message.role == "assistant" and message.content
    assert plain.usage is not None and plain.usage.completion_tokens == 5
    stream = client.chat.completions.create(
        **args, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage


def test_errors_raise_the_clients_exceptions(served: Served) -> None:
    client = served.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="nope", prompt="hi", max_tokens=2)
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="ad1", messages=CHAT, temperature=5)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as long:
        client.completions.create(model="ad1", prompt="hi", max_tokens=10_000)
    assert long.value.code == "context_length_exceeded" and "256" in long.value.message
    with pytest.raises(openai.AuthenticationError):
        served.client("olk_" + "x" * 43).models.list()


def wait_idle(served: Served, timeout: float = 5.0) -> dict[str, Any]:
    engine = served.node.serving.engine
    wait_until(lambda: (engine.stats()["running"], engine.stats()["waiting"]) == (0, 0), timeout)
    return engine.stats()


def assert_freed(served: Served, steps: int, limit: int) -> None:
    """Every row and slot is free again, and generation stopped well before ``limit`` steps."""
    engine = served.node.serving.engine
    stats = wait_idle(served)
    assert stats["running"] == 0 and stats["waiting"] == 0
    assert stats["free_rows"] == MAX_BATCH and stats["pinned_slots"] == 0
    ran = engine.steps - steps
    assert not wait_until(lambda: engine.steps - steps != ran, 0.2, fail=False)  # nothing runs
    assert ran < limit


def test_client_hanging_up_mid_stream_frees_the_engine(served: Served) -> None:
    max_tokens = 240
    body = {
        "model": "ad1",
        "prompt": "Once",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }
    steps = served.node.serving.engine.steps
    headers = {"Authorization": f"Bearer {served.key}"}
    with (
        httpx.Client(base_url=served.url, headers=headers, timeout=10) as http,
        http.stream("POST", "/v1/completions", json=body) as r,
    ):
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data: {")
            if seen == 2:
                break  # leaving the block closes the connection
    assert_freed(served, steps, max_tokens // 2)


def test_client_hanging_up_on_a_plain_request_frees_the_engine(served: Served) -> None:
    # 8 choices of 240 tokens on 4 rows: at least 480 engine steps (about a second or
    # two on the tiny base) unless the server notices that the client left.
    body = {"model": "ad6", "prompt": "Once", "max_tokens": 240, "n": 8, "ignore_eos": True}
    steps = served.node.serving.engine.steps
    headers = {"Authorization": f"Bearer {served.key}"}
    with (
        httpx.Client(base_url=served.url, headers=headers, timeout=0.3) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.post("/v1/completions", json=body)
    assert_freed(served, steps, 2 * 240)


def test_concurrent_clients_share_the_engine(served: Served) -> None:
    client = served.client()

    def one(i: int) -> tuple[int, str | None]:
        args: dict[str, Any] = {
            "model": ("ad1", "ad6")[i % 2],
            "max_tokens": 5 + i,
            "seed": i,
            "extra_body": {"ignore_eos": True},
        }
        if i % 3 == 0:
            stream = client.completions.create(
                prompt=f"Item {i}", stream=True, stream_options={"include_usage": True}, **args
            )
            *chunks, last = list(stream)
            assert last.usage is not None
            return last.usage.completion_tokens, chunks[-1].choices[0].finish_reason
        out = client.chat.completions.create(messages=CHAT, **args)
        assert out.usage is not None
        return out.usage.completion_tokens, out.choices[0].finish_reason

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(12)))
    assert results == [(5 + i, "length") for i in range(12)]
    stats = wait_idle(served)
    assert stats["free_rows"] == MAX_BATCH and stats["pinned_slots"] == 0
