"""The gateway's router against a real provider app: the tokens are the provider engine's,
the statement is checked, a provider signing with another key is refused, an unreachable
provider is failed over, and a provider refuses jobs it was not sent by its gateway."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from openledger.ledger.receipts.canonical import ReceiptSigner
from openledger.ledger.receipts.compute import check_compute, job_hash
from openledger.providers.jobs import make_job, sign_job
from openledger.providers.router import ProviderRouter, RemoteRequest, Route
from openledger.serving.request import Event
from openledger.serving.sampling import SamplingParams
from tests.conftest import free_port
from tests.providers.conftest import (
    GATEWAY_KEY,
    MODEL,
    OTHER_KEY,
    Provider,
    run_provider,
)

GREEDY = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)


def _run(
    router: ProviderRouter, provider: Provider, prompt: list[int]
) -> tuple[RemoteRequest, list[Event]]:
    events: list[Event] = []
    ended = threading.Event()

    def sink(e: Event) -> None:
        events.append(e)
        if e.kind != "token":
            ended.set()

    r = router.submit(provider.card, prompt, GREEDY, provider.serving.tokenizer(), sink)
    assert r is not None
    assert ended.wait(60)
    return r, events


def _router(*routes: Route) -> ProviderRouter:
    return ProviderRouter(lambda: list(routes), lambda: ReceiptSigner(GATEWAY_KEY))


def test_a_provider_serves_the_tokens_its_engine_generates_and_signs_them(
    provider: Provider,
) -> None:
    prompt = provider.serving.encode_prompt("Bees make")
    local = provider.serving.submit(MODEL, prompt, GREEDY).wait(60)
    router = _router(Route(provider.address, provider.url, (1,)))
    r, events = _run(router, provider, prompt)
    assert r.finish_reason == "length" and r.tokens == local.tokens
    assert "".join(e.text for e in events if e.kind == "token") == local.text
    assert r.compute is not None and r.compute.provider == provider.address
    section = r.compute.to_body(500)
    assert check_compute(section) == ""
    assert check_compute({**section, "output": "0x" + "00" * 32}) != ""  # other tokens
    assert (
        router.for_model(2) == []
        and router.submit({**provider.card, "id": 2}, prompt, GREEDY, None, None) is None
    )


def test_a_statement_signed_by_another_key_is_refused(
    catalogue,
    tiny_base_dir: Path,
) -> None:
    gateway = ReceiptSigner(GATEWAY_KEY).address
    registered = ReceiptSigner(bytes([13] * 32)).address  # what the registry says it is
    with run_provider(catalogue, tiny_base_dir, OTHER_KEY, [gateway]) as impostor:
        router = _router(Route(registered, impostor.url, (1,)))
        prompt = impostor.serving.encode_prompt("Bees make")
        r, events = _run(router, impostor, prompt)
    assert r.finish_reason == "error" and r.compute is None
    assert events[-1].kind == "error" and "another key" in str(events[-1].error)
    assert router.for_model(1) == []  # left out for a while


def test_an_unreachable_provider_is_failed_over(provider: Provider) -> None:
    dead = Route("0x" + "11" * 20, f"http://127.0.0.1:{free_port()}", (1,))
    live = Route(provider.address, provider.url, (1,))
    router = _router(dead, live)
    prompt = provider.serving.encode_prompt("Bees make")
    for _ in range(2):  # whichever is tried first, the live one answers
        r, _ = _run(router, provider, prompt)
        assert r.finish_reason == "length" and r.compute is not None
    assert router.served == {provider.address: 2}


def test_a_provider_refuses_jobs_not_signed_by_its_gateway_and_replays(
    provider: Provider,
) -> None:
    prompt = provider.serving.encode_prompt("Bees make")
    job = make_job(provider.card, prompt, GREEDY, "0x" + "22" * 20)
    stranger = httpx.post(
        f"{provider.url}/provider/jobs",
        timeout=30,
        json={"job": job, "signature": sign_job(job, ReceiptSigner(OTHER_KEY))},
    )
    assert stranger.status_code == 401 and stranger.json()["field"] == "signature"
    signed = {"job": job, "signature": sign_job(job, ReceiptSigner(GATEWAY_KEY))}
    first = httpx.post(f"{provider.url}/provider/jobs", json=signed, timeout=60)
    assert first.status_code == 200 and '"done"' in first.text
    again = httpx.post(f"{provider.url}/provider/jobs", json=signed, timeout=30)
    assert again.status_code == 422 and again.json()["field"] == "id"
    stale = {**job, "id": "0x" + "33" * 16, "issued_at": job["issued_at"] - 3600}
    old = httpx.post(
        f"{provider.url}/provider/jobs",
        timeout=30,
        json={"job": stale, "signature": sign_job(stale, ReceiptSigner(GATEWAY_KEY))},
    )
    assert old.status_code == 422 and old.json()["field"] == "issued_at"
    other = {**job, "id": "0x" + "44" * 16, "adapter_sha256": "00" * 32}
    wrong = httpx.post(
        f"{provider.url}/provider/jobs",
        timeout=30,
        json={"job": other, "signature": sign_job(other, ReceiptSigner(GATEWAY_KEY))},
    )
    assert wrong.status_code == 409
    assert job_hash(job) != job_hash(stale)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"job": {"v": 1}}'])
def test_malformed_jobs_are_refused(provider: Provider, body: bytes) -> None:
    r = httpx.post(f"{provider.url}/provider/jobs", content=body, timeout=30)
    assert r.status_code == 422
