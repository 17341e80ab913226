"""The OpenAI-compatible /v1 over a real OpenLoRA engine (the tiny base, two adapters):
models, completions, chat, streaming, and errors in OpenAI's format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.http.prompt_budget import longest_token_chars, max_prompt_chars
from openledger.node import Node
from tests.tiny import serving_node

MAX_CTX = 64
OWNER = "0x" + "ab" * 20
CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": [{"type": "text", "text": "What is a datanet?"}]},
]


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_base_dir: Path,
    adapters_dir: Path,
) -> Iterator[Node]:
    node = serving_node(
        tmp_path_factory.mktemp("openai") / "home",
        tiny_base_dir,
        {"ad0": adapters_dir / "ad0", "ad5": adapters_dir / "ad5"},
        serve_max_ctx=MAX_CTX,
        serve_max_batch=8,
    )
    yield node
    node.close()


@pytest.fixture(scope="module")
def client(node: Node) -> Iterator[TestClient]:
    key = node.api_keys.create("alice", "tests")["key"]
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def complete(client: TestClient, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/completions", json={"model": "ad0", "max_tokens": 8, **body})
    assert r.status_code == 200, r.text
    return r.json()


def sse(client: TestClient, path: str, body: dict[str, Any]) -> list[Any]:
    """The data payloads of a streamed response (``"[DONE]"`` as a string)."""
    with client.stream("POST", path, json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), raw
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def openai_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# ---------------------------------------------------------------------------- models


def test_models_lists_owners_and_prices(client: TestClient, tiny_base_dir: Path) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    models = {m["id"]: m for m in body["data"]}
    assert sorted(models) == ["ad0", "ad5"]
    ad0 = models["ad0"]
    assert ad0["object"] == "model" and ad0["owned_by"] == OWNER
    assert (ad0["price_in"], ad0["price_out"]) == ("10", "20")
    assert ad0["base"] == str(tiny_base_dir) and ad0["chain_id"] == 1000
    assert isinstance(ad0["created"], int) and ad0["created"] > 1_700_000_000
    assert client.get("/v1/models/ad5").json() == models["ad5"]
    error = openai_error(client.get("/v1/models/nope"), 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")


# ---------------------------------------------------------------------------- completions


def test_completion_usage_and_format(client: TestClient, node: Node) -> None:
    body = complete(client, prompt="The sun is", temperature=0, ignore_eos=True, user="u1")
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert body["model"] == "ad0" and isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "length"
    assert isinstance(choice["text"], str) and choice["text"]
    prompt_tokens = len(node.serving.encode_prompt("The sun is"))
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": 8,
        "total_tokens": prompt_tokens + 8,
    }
    # greedy decoding is deterministic; the adapter changes what is sampled
    again = complete(client, prompt="The sun is", temperature=0, ignore_eos=True)
    assert again["choices"][0]["text"] == choice["text"]
    texts = {
        m: complete(client, model=m, prompt="The sun is", seed=1, ignore_eos=True)["choices"][0][
            "text"
        ]
        for m in ("ad0", "ad5")
    }
    assert texts["ad0"] != texts["ad5"]


def test_completion_stream_matches_the_plain_answer(client: TestClient) -> None:
    body = {
        "model": "ad0",
        "prompt": "Water boils",
        "max_tokens": 10,
        "temperature": 0,
        "ignore_eos": True,
    }
    plain = client.post("/v1/completions", json=body).json()
    chunks = sse(client, "/v1/completions", {**body, "stream_options": {"include_usage": True}})
    assert chunks[-1] == "[DONE]"
    *parts, usage_chunk, _ = chunks
    assert usage_chunk["choices"] == [] and usage_chunk["usage"] == plain["usage"]
    assert all(p["object"] == "text_completion" and p["usage"] is None for p in parts)
    assert len({p["id"] for p in parts}) == 1 and parts[0]["id"].startswith("cmpl-")
    assert len(parts) > 2  # streamed, not one blob
    assert "".join(p["choices"][0]["text"] for p in parts) == plain["choices"][0]["text"]
    assert [p["choices"][0]["finish_reason"] for p in parts][-1] == "length"
    assert all(p["choices"][0]["finish_reason"] is None for p in parts[:-1])


def test_n_choices_per_prompt_with_seeds(client: TestClient) -> None:
    body = complete(client, prompt="Once upon", n=2, seed=3, temperature=1, ignore_eos=True)
    a, b = body["choices"]
    assert (a["index"], b["index"]) == (0, 1) and a["text"] != b["text"]
    assert body["usage"]["completion_tokens"] == 16
    # choice i samples with seed + i: choice 1 of seed 3 is choice 0 of seed 4
    alone = complete(client, prompt="Once upon", seed=4, temperature=1, ignore_eos=True)
    assert alone["choices"][0]["text"] == b["text"]
    many = complete(client, prompt=["Once upon", "The sun"], n=2, seed=3, ignore_eos=True)
    assert [c["index"] for c in many["choices"]] == [0, 1, 2, 3]
    assert [c["text"] for c in many["choices"][:2]] == [a["text"], b["text"]]
    body = {
        "model": "ad0",
        "prompt": "Once upon",
        "n": 2,
        "seed": 3,
        "max_tokens": 8,
        "ignore_eos": True,
    }
    streamed = sse(client, "/v1/completions", body)
    texts = ["", ""]
    for chunk in streamed[:-1]:
        [c] = chunk["choices"]
        texts[c["index"]] += c["text"]
    assert texts == [a["text"], b["text"]]


def test_seed_reproduces_sampled_text(client: TestClient) -> None:
    runs = [
        complete(client, prompt="Bees make", seed=42, temperature=1, max_tokens=12)
        for _ in range(2)
    ]
    assert runs[0]["choices"][0]["text"] == runs[1]["choices"][0]["text"]


def test_stop_sequence_trims_the_text(client: TestClient) -> None:
    body = {"prompt": "The river", "seed": 5, "ignore_eos": True, "max_tokens": 16}
    full = complete(client, **body)["choices"][0]["text"]
    assert len(full) >= 6, full
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = full[: full.index(stop)]
    stopped = complete(client, **body, stop=[stop, "\u2603never"])
    [choice] = stopped["choices"]
    assert choice["text"] == expected and choice["finish_reason"] == "stop"
    chunks = sse(client, "/v1/completions", {"model": "ad0", **body, "stop": stop})
    assert "".join(c["choices"][0]["text"] for c in chunks[:-1]) == expected


# ---------------------------------------------------------------------------- chat


def test_chat_completion(client: TestClient, node: Node) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "ad5",
            "messages": CHAT,
            "max_completion_tokens": 6,
            "temperature": 0,
            "ignore_eos": True,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    plain = [
        {
            "role": m["role"],
            "content": m["content"] if isinstance(m["content"], str) else m["content"][0]["text"],
        }
        for m in CHAT
    ]
    prompt_tokens = len(node.serving.encode_chat(plain))
    assert body["usage"]["prompt_tokens"] == prompt_tokens
    assert body["usage"]["completion_tokens"] == 6

    chunks = sse(
        client,
        "/v1/chat/completions",
        {"model": "ad5", "messages": CHAT, "max_tokens": 6, "temperature": 0, "ignore_eos": True},
    )
    assert chunks[-1] == "[DONE]"
    parts = chunks[:-1]
    assert all(p["object"] == "chat.completion.chunk" and p["id"] == parts[0]["id"] for p in parts)
    assert parts[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert parts[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in parts)
    assert text == choice["message"]["content"]

    # without a limit, the answer may fill the rest of the context
    rest = client.post(
        "/v1/chat/completions", json={"model": "ad5", "messages": CHAT, "ignore_eos": True}
    ).json()
    assert rest["usage"]["completion_tokens"] == MAX_CTX - prompt_tokens
    assert rest["choices"][0]["finish_reason"] == "length"


# ---------------------------------------------------------------------------- errors


def test_unknown_model_is_404_in_openai_format(client: TestClient) -> None:
    for path, body in (
        ("/v1/completions", {"prompt": "hi"}),
        ("/v1/chat/completions", {"messages": CHAT}),
    ):
        error = openai_error(client.post(path, json={"model": "nope", **body}), 404)
        assert error["type"] == "invalid_request_error" and error["code"] == "model_not_found"
        assert error["param"] == "model" and "nope" in error["message"]


def test_context_limit_is_400_naming_the_limit(client: TestClient) -> None:
    long = "the river runs to the sea " * 30
    error = openai_error(client.post("/v1/completions", json={"model": "ad0", "prompt": long}), 400)
    assert error["param"] == "prompt" and str(MAX_CTX) in error["message"]
    assert error["code"] == "context_length_exceeded"
    r = client.post("/v1/completions", json={"model": "ad0", "prompt": "hi", "max_tokens": 100})
    error = openai_error(r, 400)
    assert error["param"] == "max_tokens" and str(MAX_CTX) in error["message"]
    r = client.post(
        "/v1/chat/completions",
        json={"model": "ad0", "messages": [{"role": "user", "content": long}]},
    )
    assert openai_error(r, 400)["param"] == "messages"
    r = client.post(
        "/v1/chat/completions",
        json={"model": "ad0", "messages": CHAT, "max_completion_tokens": 100},
    )
    assert openai_error(r, 400)["param"] == "max_completion_tokens"


def test_a_prompt_too_long_to_fit_is_refused_before_it_is_tokenised(
    client: TestClient, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving = node.serving
    tok = serving.tokenizer()
    longest = longest_token_chars(tok)
    limit = max_prompt_chars(tok, MAX_CTX)
    assert limit == longest * MAX_CTX and 1 < longest < 64
    # the bound is sound: no text has fewer tokens than its characters / the longest token
    for text in ("the river runs to the sea " * 40, " " * 3000, "ab\n" * 900, "é✓🐝" * 500):
        assert len(tok(text, add_special_tokens=False)["input_ids"]) * longest >= len(text)
    tokenised: list[int] = []
    real = (serving.encode_prompt, serving.encode_chat)

    def encode_prompt(prompt: str) -> list[int]:
        tokenised.append(len(prompt))
        return real[0](prompt)

    def encode_chat(messages: list[dict[str, str]]) -> list[int]:
        tokenised.append(sum(len(m["content"]) for m in messages))
        return real[1](messages)

    monkeypatch.setattr(serving, "encode_prompt", encode_prompt)
    monkeypatch.setattr(serving, "encode_chat", encode_chat)
    over = "x" * (limit + 1)
    for path, body, param in (
        ("/v1/completions", {"prompt": over}, "prompt"),
        ("/v1/completions", {"prompt": ["short", over]}, "prompt"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": over}]}, "messages"),
    ):
        r = client.post(path, json={"model": "ad0", **body})
        error = openai_error(r, 400)
        assert (error["param"], error["code"]) == (param, "context_length_exceeded")
        assert f"{limit + 1:,} characters cannot fit" in error["message"]
    assert tokenised == []  # refused from its length alone
    # at the bound it is tokenised, then refused by its tokens
    r = client.post("/v1/completions", json={"model": "ad0", "prompt": "x" * limit})
    error = openai_error(r, 400)
    assert tokenised == [limit] and error["code"] == "context_length_exceeded"
    assert "tokens; the request asks for" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 5),
        ("top_p", 0),
        ("max_tokens", 0),
        ("n", 9),
        ("stop", [""]),
        ("seed", -1),
        ("logprobs", 3),
        ("prompt", 7),
        ("prompt", []),
    ],
)
def test_invalid_fields_are_400_naming_the_field(
    client: TestClient, field: str, value: Any
) -> None:
    body = {"model": "ad0", "prompt": "hi", field: value}
    error = openai_error(client.post("/v1/completions", json=body), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == field, error


def test_bad_bodies_are_400(client: TestClient) -> None:
    r = client.post(
        "/v1/completions",
        content=b'{"model": "ad0", "prompt": ',
        headers={"Content-Type": "application/json"},
    )
    error = openai_error(r, 400)
    assert error["type"] == "invalid_request_error" and "JSON" in error["message"]
    assert openai_error(client.post("/v1/completions", json={"model": "ad0"}), 400)["param"] == (
        "prompt"
    )
    image = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    r = client.post(
        "/v1/chat/completions",
        json={"model": "ad0", "messages": [{"role": "user", "content": [image]}]},
    )
    assert openai_error(r, 400)["param"].startswith("messages[0].content")
    r = client.post(
        "/v1/chat/completions",
        json={"model": "ad0", "messages": [{"role": "tool", "content": "x"}]},
    )
    assert openai_error(r, 400)["param"] == "messages[0].role"
    assert openai_error(client.get("/v1/nothing-here"), 404)["type"] == "invalid_request_error"


def test_missing_or_wrong_key_is_401(client: TestClient) -> None:
    body = {"model": "ad0", "prompt": "hi"}
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer olk_" + "A" * 43},
        {"Authorization": "Basic abc"},
    ):
        for r in (
            client.post("/v1/completions", json=body, headers=headers),
            client.get("/v1/models", headers=headers),
        ):
            error = openai_error(r, 401)
            assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"


def test_other_routes_keep_their_error_format(client: TestClient, node: Node) -> None:
    r = client.get("/models/nope")
    assert r.status_code == 404 and r.json()["error"] == "NotFoundError"
    r = client.post("/jobs", json={})  # alice's key has no write scope
    assert r.status_code == 403 and r.json()["error"] == "ForbiddenError"
    assert r.json()["field"] == "Authorization" and "write" in r.json()["message"]
    writer = node.api_keys.create("alice", "writer", scopes="write")["key"]
    r = client.post("/jobs", json={}, headers={"Authorization": f"Bearer {writer}"})
    assert r.status_code == 422 and r.json()["error"] == "ValidationError"
    assert r.json()["field"] == "datanet"
