"""Paid inference over /v1 on the devnet: credit held before compute (402 otherwise), one
signed receipt per choice, fees to the wei, receipts on the last stream chunk, clients that
hang up pay for what was generated, and 64 concurrent paying clients leave the books exact.

The node is the market's (a real 'facts' snapshot on the devnet, grace's synced 100 OPEN);
it serves one tiny-base adapter registered as a model trained on that snapshot.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from openledger.app import create_app
from openledger.auth.operator_token import read_token
from openledger.ledger.paid.inference import attribution_view
from openledger.ledger.receipts.canonical import check_served, content_hash, recover_signer
from openledger.ledger.service import request_hash
from openledger.ledger.settlement.beneficiaries import load_sets
from openledger.node import Node
from openledger.serving.engine import Engine
from openledger.serving.request import Request
from openledger.units import OPEN, fmt_open
from tests.market import Market, deposit
from tests.servers import serve_in_thread, wait_until
from tests.tiny import register_models

pytestmark = pytest.mark.anvil

MODEL = "facts-lora"
MAX_CTX = 64
# wei per 1,000 tokens: about 0.1 OPEN a request (so 1 OPEN runs out), and odd, so that
# the fee's rounding up to a whole wei shows
PRICE_IN = 20 * OPEN + 7
PRICE_OUT = 30 * OPEN + 11
SPLIT_ROLES = {"platform", "owner", "contributor"}  # the rest is pooled


def fee(prompt_tokens: int, completion_tokens: int) -> int:
    """DESIGN §5: prompt/1000 · price_in + completion/1000 · price_out, rounded up."""
    return -(-(prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) // 1000)


@dataclass
class Shop:
    market: Market
    node: Node
    client: TestClient  # grace's key
    keys: dict[str, str]

    def addr(self, name: str) -> str:
        return self.market.addr(name)

    def receipt(self, ref: str) -> dict[str, Any]:
        """A receipt by its public id (``rc_…``), as anyone holding the id reads it."""
        assert ref.startswith("rc_"), ref
        r = self.client.get(f"/receipts/{ref}", headers={"Authorization": ""})  # public
        assert r.status_code == 200, r.text
        return r.json()

    def credit(self, name: str) -> dict[str, Any]:
        return self.node.ledger.credit(self.addr(name))


@pytest.fixture
def shop(market: Market, tiny_base_dir: Path, adapters_dir: Path) -> Iterator[Shop]:
    node = market.node
    node.settings = replace(
        node.settings, serve_device="cpu", serve_max_batch=64, serve_max_ctx=MAX_CTX
    )
    register_models(
        node.db,
        str(tiny_base_dir),
        {MODEL: adapters_dir / "ad3"},
        owner=market.addr("dave"),
        price_in=PRICE_IN,
        price_out=PRICE_OUT,
        first_id=1,
        snapshot_roots=market.model["snapshot_roots"],
    )
    keys = {who: node.api_keys.create(who, "paid")["key"] for who in ("grace", "heidi")}
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {keys['grace']}"
        yield Shop(market, node, client, keys)


def sse(r: httpx.Response) -> list[Any]:
    raw = "".join(r.iter_text())
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), raw
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def check_receipt(shop: Shop, receipt_id: str, payer: str) -> dict[str, Any]:
    """The receipt as anyone can fetch it: hashes, the signed head, fee and split check out."""
    doc = shop.receipt(receipt_id)
    body = doc["receipt"]
    assert doc["id"] == receipt_id and doc["epoch"] is None
    assert content_hash(body) == doc["content_hash"]
    operator = shop.node.accounts.operator_address()
    assert recover_signer(doc["head"]["hash"], doc["head"]["signature"]) == operator
    assert check_served(doc, operator) == ""  # its place, up to its group's signed head
    assert body["payer"] == shop.addr(payer) and body["model"]["name"] == MODEL
    assert body["prices"] == {"in": str(PRICE_IN), "out": str(PRICE_OUT)}
    tokens = body["tokens"]
    assert int(body["fee"]) == fee(tokens["prompt"], tokens["completion"])
    paid = sum(int(p["amount"]) for p in body["payouts"])
    assert paid + sum(int(v) for v in body["pools"].values()) == int(body["fee"])
    return body


# ---------------------------------------------------------------------------- credit


def test_no_credit_is_402_before_the_engine_sees_anything(shop: Shop) -> None:
    engine = shop.node.serving.engine
    steps = engine.steps
    heidi = {"Authorization": f"Bearer {shop.keys['heidi']}"}
    calls = [
        ("/v1/completions", {"prompt": "The Amazon", "max_tokens": 4}),
        ("/v1/completions", {"prompt": ["a", "b"], "n": 2, "max_tokens": 4, "stream": True}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "stream": True}),
    ]
    for path, body in calls:
        r = shop.client.post(path, json={"model": MODEL, **body}, headers=heidi)
        assert r.status_code == 402, r.text
        assert r.headers["content-type"] == "application/json"
        error = r.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "insufficient_quota",
            "insufficient_quota",
            "credit",
        )
        assert shop.addr("heidi") in error["message"] and "deposit" in error["message"]
    assert engine.steps == steps
    assert (engine.stats()["running"], engine.stats()["waiting"]) == (0, 0)
    credit = shop.credit("heidi")
    assert (credit["held"], credit["charged"], credit["available"]) == ("0", "0", "0")
    assert shop.node.ledger.receipts()["total"] == 0


def test_a_call_is_held_whole_all_choices_or_none(shop: Shop) -> None:
    deposit(shop.node, "heidi", OPEN)
    heidi = {"Authorization": f"Bearer {shop.keys['heidi']}"}
    first = fee(len(shop.node.serving.encode_prompt("Hi")), 10)
    assert first < OPEN < first + 3 * fee(0, 10)  # one choice fits, four do not
    steps = shop.node.serving.engine.steps
    body = {"model": MODEL, "prompt": "Hi", "max_tokens": 10, "ignore_eos": True}
    r = shop.client.post("/v1/completions", json={**body, "n": 4}, headers=heidi)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    total = first + 3 * fee(0, 10)
    assert error["param"] == "credit"
    said = f"has 1 OPEN of inference credit; this call's 4 choices can cost up to {fmt_open(total)}"
    assert said in error["message"]
    assert "fewer choices (n)" in error["message"]
    assert shop.node.serving.engine.steps == steps
    assert shop.credit("heidi")["held"] == "0" and shop.credit("heidi")["available"] == str(OPEN)
    r = shop.client.post("/v1/completions", json=body, headers=heidi)
    assert r.status_code == 200, r.text
    assert shop.credit("heidi")["available"] == str(OPEN - first)


# ---------------------------------------------------------------------------- receipts


def test_a_completion_is_charged_with_a_signed_receipt(shop: Shop) -> None:
    body = {
        "model": MODEL,
        "prompt": "Honey never",
        "max_tokens": 5,
        "temperature": 0,
        "ignore_eos": True,
    }
    r = shop.client.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    usage = out["usage"]
    assert usage["completion_tokens"] == 5
    assert out["receipt_ids"] == [out["receipt_id"]] and out["receipt_id"].startswith("rc_")
    # no attribution index yet: the contributors' half is paid pro rata to records
    assert out["attribution"] == attribution_view(None) and out["attributions"] == [
        attribution_view(None)
    ]
    receipt = check_receipt(shop, out["receipt_id"], "grace")
    assert receipt["tokens"] == {"prompt": usage["prompt_tokens"], "completion": 5}
    charged = fee(usage["prompt_tokens"], 5)
    assert (usage["prompt_tokens"] * PRICE_IN + 5 * PRICE_OUT) % 1000  # it was rounded up
    assert receipt["fee"] == str(charged)
    # the receipt commits to what was asked: the response id, the choice, prompt, sampling
    asked = {
        "api": "completions",
        "id": out["id"],
        "choice": 0,
        "prompt": "Honey never",
        "max_tokens": 5,
        "temperature": 0.0,
        "top_p": 1.0,
        "stop": [],
        "seed": None,
        "ignore_eos": True,
    }
    assert receipt["request_hash"] == request_hash(shop.addr("grace"), MODEL, asked)
    # the split: owner dave; the stakers' part pooled over the approved contributions only
    roles = {p["role"] for p in receipt["payouts"]}
    assert {"platform", "owner"} <= roles <= SPLIT_ROLES
    owner = [p for p in receipt["payouts"] if p["role"] == "owner"]
    assert [p["account"] for p in owner] == [shop.addr("dave")]
    assert int(receipt["pools"]["staker"]) == int(receipt["split"]["stakers"])
    with shop.node.db.session() as s:
        members = load_sets(s, [receipt["beneficiaries"]])[receipt["beneficiaries"]]
    assert {m.contribution for m in members} == set(shop.market.contributions.values())
    # the payer's credit moved by exactly the fee; nothing is left held
    credit = shop.credit("grace")
    assert credit["charged"] == str(charged) and credit["held"] == "0"
    assert int(credit["available"]) == 100 * OPEN - charged
    # and the API shows the same
    assert shop.client.get("/credit").json() == credit
    mine = shop.client.get("/receipts").json()
    assert mine["total"] == 1 and [i["id"] for i in mine["items"]] == [out["receipt_id"]]
    assert mine["items"][0]["fee"] == str(charged)


def test_several_prompts_and_choices_get_one_receipt_each(shop: Shop) -> None:
    body = {
        "model": MODEL,
        "prompt": ["Light from", "Octopuses have"],
        "n": 2,
        "seed": 4,
        "max_tokens": 3,
        "ignore_eos": True,
    }
    out = shop.client.post("/v1/completions", json=body).json()
    ids = out["receipt_ids"]
    assert len(ids) == len(set(ids)) == 4 and out["receipt_id"] == ids[0]
    assert len(out["attributions"]) == 4
    receipts = [check_receipt(shop, i, "grace") for i in ids]
    # each prompt is billed once (on its first choice), as usage counts it
    assert sum(r["tokens"]["prompt"] for r in receipts) == out["usage"]["prompt_tokens"]
    assert [r["tokens"]["prompt"] > 0 for r in receipts] == [True, False, True, False]
    assert sum(r["tokens"]["completion"] for r in receipts) == out["usage"]["completion_tokens"]
    total = sum(int(r["fee"]) for r in receipts)
    assert int(shop.credit("grace")["charged"]) == total


def test_streams_carry_the_receipt_on_their_last_chunk(shop: Shop) -> None:
    chat = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say something"}],
        "max_tokens": 4,
        "ignore_eos": True,
        "stream": True,
    }
    with shop.client.stream("POST", "/v1/chat/completions", json=chat) as r:
        assert r.status_code == 200
        *chunks, last, done = sse(r)
    assert done == "[DONE]"
    assert last["choices"][0]["finish_reason"] == "length" and last["choices"][0]["index"] == 0
    assert all("receipt_id" not in c for c in chunks)
    receipt = check_receipt(shop, last["receipt_id"], "grace")
    assert last["receipt_ids"] == [last["receipt_id"]]
    assert last["attribution"] == attribution_view(None)
    assert receipt["tokens"]["completion"] == 4

    # with include_usage, the usage chunk is the last one and carries them
    plain = {
        "model": MODEL,
        "prompt": "Water",
        "max_tokens": 3,
        "ignore_eos": True,
        "n": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with shop.client.stream("POST", "/v1/completions", json=plain) as r:
        *chunks, last, done = sse(r)
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 6
    assert len(last["receipt_ids"]) == 2 and last["receipt_id"] == last["receipt_ids"][0]
    receipts = [check_receipt(shop, i, "grace") for i in last["receipt_ids"]]
    assert sum(r["tokens"]["prompt"] for r in receipts) == last["usage"]["prompt_tokens"]
    ends = {
        c["choices"][0]["index"]: c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"][0]["finish_reason"]
    }
    assert ends == {0: "length", 1: "length"}
    assert all("receipt_id" not in c for c in chunks)


def test_receipts_by_public_id_are_public_by_number_or_hash_the_payers(shop: Shop) -> None:
    out = shop.client.post(
        "/v1/completions", json={"model": MODEL, "prompt": "Sun", "max_tokens": 2}
    ).json()
    doc = shop.receipt(out["receipt_id"])  # no credential: the public id is enough
    assert doc["id"] == out["receipt_id"] and doc["seq"] == 1
    heidi = {"Authorization": f"Bearer {shop.keys['heidi']}"}
    for ref in (str(doc["seq"]), doc["hash"]):
        # the payer's key (and the operator token) read it by number or hash as well ...
        assert shop.client.get(f"/receipts/{ref}").json() == doc
        operator = {"Authorization": f"Bearer {read_token(shop.node.settings.home)}"}
        assert shop.client.get(f"/receipts/{ref}", headers=operator).json() == doc
        # ... nobody else: no credential is 401, another payer's key 403
        r = shop.client.get(f"/receipts/{ref}", headers={"Authorization": ""})
        assert r.status_code == 401 and r.json()["field"] == "Authorization"
        assert "rc_" in r.json()["fix"]
        r = shop.client.get(f"/receipts/{ref}", headers=heidi)
        assert r.status_code == 403 and r.json()["error"] == "ForbiddenError"
    # a guessed public id (one bit changed) is no receipt
    guess = doc["id"][:-2] + ("A" if doc["id"][-2] != "A" else "B") + doc["id"][-1]
    r = shop.client.get(f"/receipts/{guess}", headers={"Authorization": ""})
    assert r.status_code == 404
    r = shop.client.get("/receipts/99")  # grace's key: no such receipt
    assert r.status_code == 404
    assert r.json()["error"] == "NotFoundError" and r.json()["field"] == "receipt"
    assert "receipt_id" in r.json()["fix"]
    for path in ("/receipts", "/credit"):
        assert shop.client.get(path, headers={"Authorization": ""}).status_code == 401
    assert shop.client.get("/receipts", headers=heidi).json() == {"total": 0, "items": []}


# ---------------------------------------------------------------------------- a real server


@dataclass
class Served:
    url: str
    keys: dict[str, str]

    def openai(self, who: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.keys[who], max_retries=0)

    def http(self, who: str, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@contextmanager
def serve(shop: Shop) -> Iterator[Served]:
    with serve_in_thread(create_app(shop.node)) as url:
        yield Served(url, shop.keys)


def settled(shop: Shop, who: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The payer's receipts, oldest first, once nothing of its credit is held any more."""
    wait_until(lambda: shop.credit(who)["held"] == "0", timeout)
    items = shop.node.ledger.receipts(payer=shop.addr(who), limit=500)["items"]
    return [shop.receipt(i["id"]) for i in reversed(items)]


class Pause:
    """Paces the engine for a test: a request that has generated ``at`` tokens stops there
    (the whole engine waits) until the server cancels it because its client went away. A
    hang-up therefore lands mid-generation however fast or loaded the machine is; nothing
    depends on a sleep being long enough."""

    def __init__(self, engine: Engine, at: int, wait_s: float = 30) -> None:
        self.at, self.wait_s = at, wait_s
        self.reached = threading.Event()  # some request is held at ``at`` tokens
        self.seen: dict[int, Request] = {}  # every request the engine ran since ``clear``
        self.timed_out = False
        engine.on_logits = self

    def clear(self) -> None:
        self.reached.clear()
        self.seen.clear()

    def __call__(self, rows: list[Request], logits: Any) -> None:
        self.seen.update((r.id, r) for r in rows)
        held = [r for r in rows if len(r.tokens) >= self.at and not r.cancelled]
        if not held:
            return
        self.reached.set()
        cancelled = wait_until(
            lambda: all(r.cancelled for r in held), timeout=self.wait_s, every=0.002, fail=False
        )
        self.timed_out = not cancelled


def _post_and_hang_up(url: str, key: str, path: str, body: dict[str, Any]) -> socket.socket:
    """Send a request on a raw connection (the caller closes it to hang up)."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def test_clients_that_hang_up_pay_for_what_was_generated(shop: Shop) -> None:
    # two engine rows, the model's whole context, 240 tokens a choice: the engine is held at
    # 8 tokens a request until the server has seen its client leave and cancelled it
    node = shop.node
    assert "serving" not in node.__dict__
    node.settings = replace(node.settings, serve_max_batch=2, serve_max_ctx=0)
    at, max_tokens = 8, 240
    pause = Pause(node.serving.engine, at)
    body = {
        "model": MODEL,
        "prompt": "Once",
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
    }
    with serve(shop) as served:
        with (
            served.http("grace") as http,
            http.stream("POST", "/v1/completions", json={**body, "stream": True}) as r,
        ):
            assert r.status_code == 200
            seen = 0
            for line in r.iter_lines():
                seen += line.startswith("data: {")
                if seen == 2:
                    break  # leaving the block closes the connection
        [streamed] = settled(shop, "grace")
        [stream_request] = pause.seen.values()
        pause.clear()
        # a plain call of 8 choices: two run (and stop at 8 tokens), six wait for a row;
        # the client hangs up once the engine holds one at 8 tokens (its holds are taken)
        sock = _post_and_hang_up(
            served.url, shop.keys["grace"], "/v1/completions", {**body, "n": 8}
        )
        try:
            assert pause.reached.wait(30), "no choice of the plain call reached 8 tokens"
        finally:
            sock.close()
        receipts = settled(shop, "grace")
    assert not pause.timed_out, "the server never cancelled a request whose client left"
    # the stream: charged exactly the tokens it generated before the engine stopped it
    tokens = streamed["receipt"]["tokens"]
    assert 2 <= tokens["completion"] == len(stream_request.tokens) <= at + 1
    # the plain call: the choices that ran are charged what they produced, once each; those
    # still waiting for a row when it was cancelled produced nothing and were released
    plain = receipts[1:]
    ran = sorted(len(r.tokens) for r in pause.seen.values() if r.tokens)
    assert 1 <= len(ran) <= 2 and max(ran) <= at + 1
    assert sorted(d["receipt"]["tokens"]["completion"] for d in plain) == ran
    assert all(r.finish_reason == "cancelled" for r in pause.seen.values())
    for d in receipts:
        check_receipt(shop, d["id"], "grace")
    assert len({d["receipt"]["request_hash"] for d in receipts}) == len(receipts)
    charged = sum(int(d["receipt"]["fee"]) for d in receipts)
    credit = shop.credit("grace")
    assert credit["charged"] == str(charged) and int(credit["available"]) == 100 * OPEN - charged
    stats = node.serving.engine.stats()
    assert (stats["running"], stats["waiting"], stats["free_rows"]) == (0, 0, 2)


def test_64_concurrent_paying_clients_keep_the_books_exact(shop: Shop) -> None:
    node = shop.node
    small = 2 * OPEN
    deposit(node, "heidi", small)  # enough for a few requests only
    prompt = "Bees make"
    heidi_fee = fee(len(node.serving.encode_prompt(prompt)), 4)
    assert 4 < small // heidi_fee < 32
    grace_before = shop.credit("grace")

    def grace(client: openai.OpenAI, i: int) -> list[str]:
        args: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 2 + i % 5,
            "seed": i,
            "extra_body": {"ignore_eos": True},
        }
        if i % 4 == 0:
            chunks = list(client.completions.create(prompt=f"Item {i}", stream=True, **args))
            return chunks[-1].model_extra["receipt_ids"]
        if i % 4 == 1:
            out = client.chat.completions.create(
                messages=[{"role": "user", "content": f"Item {i}"}], n=2, **args
            )
            assert out.usage is not None and out.usage.completion_tokens == 2 * (2 + i % 5)
            return out.model_extra["receipt_ids"]
        done = client.completions.create(prompt=f"Item {i}", **args)
        assert done.model_extra["receipt_id"] == done.model_extra["receipt_ids"][0]
        return done.model_extra["receipt_ids"]

    def heidi(http: httpx.Client) -> str | None:
        r = http.post(
            "/v1/completions",
            json={"model": MODEL, "prompt": prompt, "max_tokens": 4, "ignore_eos": True},
        )
        if r.status_code == 402:
            assert r.json()["error"]["code"] == "insufficient_quota"
            return None
        assert r.status_code == 200, r.text
        return r.json()["receipt_id"]

    with serve(shop) as served, served.http("heidi") as http:
        client = served.openai("grace")
        with ThreadPoolExecutor(64) as pool:
            graces = [pool.submit(grace, client, i) for i in range(32)]
            heidis = [pool.submit(heidi, http) for _ in range(32)]
            grace_ids = [i for f in graces for i in f.result()]
            heidi_ids = [f.result() for f in heidis]
        refused = heidi_ids.count(None)
        assert refused > 0  # heidi's deposit ran out
        # whatever the interleaving, heidi paid for as many requests as the deposit covers
        while (more := heidi(http)) is not None:
            heidi_ids.append(more)
        paid_heidi = [i for i in heidi_ids if i is not None]
        assert len(paid_heidi) == small // heidi_fee

    # receipts: one per choice, numbered 1..N with no gap or repeat, hash-chained, signed
    assert len(set(grace_ids + paid_heidi)) == len(grace_ids + paid_heidi)
    docs = sorted((shop.receipt(i) for i in grace_ids + paid_heidi), key=lambda d: d["seq"])
    assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
    assert node.ledger.receipts()["total"] == len(docs) == 32 + 8 + len(paid_heidi)
    assert [d["prev"] for d in docs[1:]] == [d["hash"] for d in docs[:-1]]
    bodies = [check_receipt(shop, i, "grace") for i in grace_ids]
    bodies += [check_receipt(shop, i, "heidi") for i in paid_heidi]
    # each payer's credit fell by exactly its receipts' fees; nothing negative, nothing held
    for who, before in (("grace", grace_before), ("heidi", None)):
        credit = shop.credit(who)
        mine = [b for b in bodies if b["payer"] == shop.addr(who)]
        fees = sum(int(b["fee"]) for b in mine)
        deposited = int(before["available"]) if before else small
        assert int(credit["available"]) == deposited - fees >= 0
        assert credit["held"] == "0" and int(credit["charged"]) >= fees
    assert int(shop.credit("heidi")["available"]) < heidi_fee
    # all the money paid in went out in payouts and pools, to the wei
    assert sum(int(b["fee"]) for b in bodies) == sum(
        int(p["amount"]) for b in bodies for p in b["payouts"]
    ) + sum(int(v) for b in bodies for v in b["pools"].values())
    stats = node.serving.engine.stats()
    assert (stats["running"], stats["waiting"]) == (0, 0)
