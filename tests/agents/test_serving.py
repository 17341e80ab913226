"""Calls to `agent/NAME` over the paid /v1 path on the devnet: the agent's system prompt and
sampling defaults applied, the caller pays the model's fee plus the agent's price (held
before compute, 402 naming the agent otherwise), the agent's owner earns its price, the
receipt records the agent, and the epoch settles and audits it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from openledger.agents.config import AgentConfig
from openledger.agents.runner import Consulted, with_answers
from openledger.app import create_app
from openledger.node import Node
from openledger.store.ledger_tables import ReceiptRow
from openledger.units import OPEN
from tests.market import Market, deposit
from tests.tiny import register_models

pytestmark = pytest.mark.anvil

MODEL = "facts-lora"
PRICE_IN = OPEN + 7  # wei per 1,000 tokens (odd: the fee's rounding up shows)
PRICE_OUT = 2 * OPEN + 11
AGENT_PRICE = 2 * OPEN + 3  # per call, more than heidi's 1 OPEN of credit
SYSTEM = "Answer with facts."
CTX = 160  # room for what an agent's callees say (the tiny base has 256 positions)


def fee(prompt_tokens: int, completion_tokens: int) -> int:
    return -(-(prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) // 1000)


@dataclass
class Desk:
    node: Node
    client: TestClient
    keys: dict[str, str]
    market: Market

    def post(self, path: str, who: str = "grace", **body: Any) -> Any:
        return self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {self.keys[who]}"}
        )

    def receipt(self, ref: str) -> dict[str, Any]:
        r = self.client.get(f"/receipts/{ref}", headers={"Authorization": ""})
        assert r.status_code == 200, r.text
        return r.json()["receipt"]

    def available(self, who: str) -> int:
        return int(self.node.ledger.credit(self.market.addr(who))["available"])


def publish_model(market: Market, tiny_base_dir: Path, adapters_dir: Path) -> None:
    """dave's :data:`MODEL` (the tiny base with adapter ad3, paying the market's snapshot
    contributors) registered in ModelRegistry and in the node's model table."""
    node = market.node
    dave = node.accounts.signer("dave")
    mid, _ = node.contracts.models.register_model(
        dave,
        "tiny-base",
        "ab" * 32,
        market.model["snapshot_roots"],
        "00" * 32,
        PRICE_IN,
        PRICE_OUT,
        "test",
    )
    register_models(
        node.db,
        str(tiny_base_dir),
        {MODEL: adapters_dir / "ad3"},
        owner=market.addr("dave"),
        price_in=PRICE_IN,
        price_out=PRICE_OUT,
        first_id=mid,
        snapshot_roots=market.model["snapshot_roots"],
    )


@pytest.fixture
def desk(market: Market, tiny_base_dir: Path, adapters_dir: Path) -> Iterator[Desk]:
    node = market.node
    node.settings = replace(node.settings, serve_device="cpu", serve_max_batch=8, serve_max_ctx=CTX)
    publish_model(market, tiny_base_dir, adapters_dir)
    cfg = AgentConfig(model=MODEL, system_prompt=SYSTEM, temperature=0.0, max_tokens=3)
    node.agents.create("helper", cfg, price=AGENT_PRICE, signer=node.accounts.signer("bob"))
    deposit(node, "heidi", OPEN)
    keys = {who: node.api_keys.create(who, "paid")["key"] for who in ("grace", "heidi")}
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        yield Desk(node, client, keys, market)


def test_an_agent_call_is_its_model_with_its_configuration_plus_its_price(desk: Desk) -> None:
    before = desk.available("grace")
    msgs = [{"role": "user", "content": "Where does light come from?"}]
    r = desk.post("/v1/chat/completions", model="agent/helper", messages=msgs)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model"] == "agent/helper"
    # the same call straight to the model, with the agent's system prompt and defaults
    direct = desk.post(
        "/v1/chat/completions",
        model=MODEL,
        max_tokens=3,
        temperature=0,
        messages=[{"role": "system", "content": SYSTEM}, *msgs],
    ).json()
    assert doc["usage"] == direct["usage"] and doc["usage"]["completion_tokens"] == 3
    assert doc["choices"][0]["message"] == direct["choices"][0]["message"]

    body = desk.receipt(doc["receipt_id"])
    model_fee = fee(doc["usage"]["prompt_tokens"], doc["usage"]["completion_tokens"])
    agent = desk.node.agents.get("helper")
    expect = {
        "id": agent["id"],
        "name": "helper",
        "owner": agent["owner"],
        "price": str(AGENT_PRICE),
        "config_hash": agent["config_hash"],
        "wallet": agent["wallet"],
    }
    assert body["agent"] == expect
    assert body["fee"] == str(model_fee + AGENT_PRICE) and body["model"]["name"] == MODEL
    payouts = body["payouts"]
    assert payouts[-1] == {
        "account": desk.market.addr("bob"),
        "role": "agent",
        "amount": str(AGENT_PRICE),
    }
    model_part = sum(int(p["amount"]) for p in payouts[:-1])
    assert model_part + sum(int(v) for v in body["pools"].values()) == model_fee
    plain = desk.receipt(direct["receipt_id"])
    assert "agent" not in plain and plain["fee"] == str(model_fee)
    assert before - desk.available("grace") == 2 * model_fee + AGENT_PRICE

    # the epoch settles the agent's price to its owner and the audit recomputes it
    node = desk.node
    assert node.epochs.close()["status"] == "settled"
    assert node.auditor.audit(1).ok
    earned = node.rewards.earnings(desk.market.addr("bob"))
    assert earned["by_role"]["agent"] == str(AGENT_PRICE) == earned["settled"]


def test_completions_take_the_agent_defaults_and_prompt(desk: Desk) -> None:
    r = desk.post("/v1/completions", model="agent/helper", prompt="Octopuses")
    assert r.status_code == 200, r.text
    doc = r.json()
    direct = desk.post(
        "/v1/completions", model=MODEL, prompt=f"{SYSTEM}\n\nOctopuses", max_tokens=3, temperature=0
    ).json()
    assert doc["usage"] == direct["usage"]
    assert doc["choices"][0]["text"] == direct["choices"][0]["text"]
    # what the caller sets wins over the agent's defaults
    longer = desk.post(
        "/v1/completions", model="agent/helper", prompt="Octopuses", max_tokens=5, temperature=0
    ).json()
    assert longer["usage"]["completion_tokens"] == 5


def test_models_lists_active_agents(desk: Desk) -> None:
    auth = {"Authorization": f"Bearer {desk.keys['grace']}"}
    models = {m["id"]: m for m in desk.client.get("/v1/models", headers=auth).json()["data"]}
    agent = models["agent/helper"]
    assert agent["agent"]["price"] == str(AGENT_PRICE) and agent["agent"]["model"] == MODEL
    assert agent["owned_by"] == desk.market.addr("bob") and models[MODEL]["agent"] is None
    assert (agent["price_in"], agent["price_out"]) == (str(PRICE_IN), str(PRICE_OUT))
    one = desk.client.get("/v1/models/agent/helper", headers=auth).json()
    assert one["id"] == "agent/helper" and one["agent"] == agent["agent"]
    desk.node.agents.set_active("helper", False, signer=desk.node.accounts.signer("bob"))
    models = {m["id"] for m in desk.client.get("/v1/models", headers=auth).json()["data"]}
    assert "agent/helper" not in models and MODEL in models


def test_refused_calls_charge_nothing(desk: Desk) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    heidi = desk.available("heidi")
    r = desk.post("/v1/chat/completions", "heidi", model="agent/helper", messages=msgs)
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert "agent/helper's price of 2.000000000000000003 OPEN" in error["message"]
    assert error["code"] == "insufficient_quota" and desk.available("heidi") == heidi
    ok = desk.post("/v1/chat/completions", "heidi", model=MODEL, messages=msgs, max_tokens=2)
    assert ok.status_code == 200  # the model alone fits heidi's credit

    grace = desk.available("grace")
    r = desk.post("/v1/chat/completions", model="agent/nobody", messages=msgs)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    desk.node.agents.set_active("helper", False, signer=desk.node.accounts.signer("bob"))
    r = desk.post("/v1/chat/completions", model="agent/helper", messages=msgs)
    assert r.status_code == 409 and "paused" in r.json()["error"]["message"]
    assert desk.available("grace") == grace


# ------------------------------------------------------------------ agents that call others


def receipt_row(node: Node, link: str) -> dict[str, Any]:
    with node.db.session() as s:
        row = s.scalar(select(ReceiptRow).where(ReceiptRow.hash == link))
        assert row is not None, link
        return {
            "seq": row.seq,
            "payer": row.payer,
            "fee": int(row.fee),
            "body": json.loads(row.body),
        }


def receipts(node: Node) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(ReceiptRow)) or 0


def test_an_agent_that_calls_pays_from_its_wallet_and_links_the_receipts(desk: Desk) -> None:
    node = desk.node
    carol = node.accounts.signer("carol")
    cfg = AgentConfig(
        model=MODEL,
        system_prompt="Use what you were told.",
        max_tokens=3,
        calls=("agent/helper", MODEL),
    )
    lead = node.agents.create("lead", cfg, price=OPEN, signer=carol)
    msgs = [{"role": "user", "content": "Tell me about octopuses."}]
    grace, count = desk.available("grace"), receipts(node)

    r = desk.post("/v1/chat/completions", model="agent/lead", messages=msgs)
    assert r.status_code == 402, r.text  # its wallet is empty: refused before any compute
    error = r.json()["error"]["message"]
    assert f"agent/lead's wallet {lead['wallet']} has 0 OPEN" in error
    assert "fund the agent's wallet" in error
    assert desk.available("grace") == grace and receipts(node) == count

    node.agents.fund("lead", 5 * OPEN, signer=carol)
    r = desk.post("/v1/chat/completions", model="agent/lead", messages=msgs)
    assert r.status_code == 200, r.text
    doc = r.json()
    outer = desk.receipt(doc["receipt_id"])
    assert outer["payer"] == desk.market.addr("grace") and outer["agent"]["name"] == "lead"
    assert outer["agent"]["wallet"] == lead["wallet"] and len(outer["agent"]["inner"]) == 2
    via_helper, via_model = (receipt_row(node, h) for h in outer["agent"]["inner"])
    assert via_helper["payer"] == via_model["payer"] == lead["wallet"]
    assert via_helper["body"]["agent"]["name"] == "helper"  # helper's price to bob, paid by lead
    assert via_helper["body"]["payouts"][-1] == {
        "account": desk.market.addr("bob"),
        "role": "agent",
        "amount": str(AGENT_PRICE),
    }
    assert "agent" not in via_model["body"] and via_model["body"]["model"]["name"] == MODEL
    assert via_helper["seq"] < via_model["seq"] < receipts(node)
    # the wallet paid the calls, the caller the answer (with what the callees said in it)
    wallet = node.agents.wallet("lead")
    assert int(wallet["charged"]) == via_helper["fee"] + via_model["fee"]
    usage = doc["usage"]
    assert int(outer["fee"]) == fee(usage["prompt_tokens"], usage["completion_tokens"]) + OPEN
    assert grace - desk.available("grace") == int(outer["fee"])
    system = {"role": "system", "content": cfg.system_prompt}
    alone = desk.post(
        "/v1/chat/completions", model=MODEL, max_tokens=3, temperature=0, messages=[system, *msgs]
    ).json()
    assert usage["prompt_tokens"] > alone["usage"]["prompt_tokens"]

    assert node.epochs.close()["status"] == "settled"
    assert node.auditor.audit(1).ok
    assert node.rewards.earnings(desk.market.addr("carol"))["by_role"]["agent"] == str(OPEN)
    assert node.rewards.earnings(desk.market.addr("bob"))["by_role"]["agent"] == str(AGENT_PRICE)


def test_calls_are_refused_over_the_cap_and_for_several_choices(desk: Desk) -> None:
    node = desk.node
    carol = node.accounts.signer("carol")
    cfg = AgentConfig(model=MODEL, max_tokens=3, calls=(MODEL,), spend_cap=OPEN // 100)
    node.agents.create("capped", cfg, price=0, signer=carol)
    node.agents.fund("capped", 5 * OPEN, signer=carol)
    msgs = [{"role": "user", "content": "hi"}]
    grace, count = desk.available("grace"), receipts(node)
    r = desk.post("/v1/chat/completions", model="agent/capped", messages=msgs)
    assert r.status_code == 402, r.text
    assert (
        "agent/capped has spent 0 OPEN of its 0.01 OPEN cap this epoch"
        in r.json()["error"]["message"]
    )
    r = desk.post("/v1/chat/completions", model="agent/capped", messages=msgs, n=2)
    assert r.status_code == 400 and r.json()["error"]["param"] == "n"
    r = desk.post("/v1/completions", model="agent/capped", prompt="hi")
    assert r.status_code == 400 and "chat requests only" in r.json()["error"]["message"]
    # no room left for what the callees say: refused before any call is made
    node.agents.create(
        "roomy", AgentConfig(model=MODEL, max_tokens=3, calls=(MODEL,)), price=0, signer=carol
    )
    node.agents.fund("roomy", 5 * OPEN, signer=carol)
    serving = node.serving
    for k in range(1, 60):  # the longest message that fits alone, not with the callee's line
        long = [{"role": "user", "content": "octopus " * k}]
        blank = with_answers("", [Consulted(MODEL, "", "", 0)], long)
        if len(serving.encode_chat(blank)) + 3 > CTX:
            break
    assert len(serving.encode_chat(long)) + 3 <= CTX
    r = desk.post("/v1/chat/completions", model="agent/roomy", messages=long, max_tokens=3)
    assert r.status_code == 400, r.text
    assert "before they say anything" in r.json()["error"]["message"]
    assert node.agents.wallet("roomy")["charged"] == "0"
    assert desk.available("grace") == grace and receipts(node) == count


def test_a_streamed_call_to_an_agent_that_calls(desk: Desk) -> None:
    node = desk.node
    carol = node.accounts.signer("carol")
    node.agents.create(
        "streamer", AgentConfig(model=MODEL, max_tokens=3, calls=(MODEL,)), price=5, signer=carol
    )
    node.agents.fund("streamer", 2 * OPEN, signer=carol)
    body = {
        "model": "agent/streamer",
        "stream": True,
        "messages": [{"role": "user", "content": "Honey?"}],
    }
    auth = {"Authorization": f"Bearer {desk.keys['grace']}"}
    with desk.client.stream("POST", "/v1/chat/completions", json=body, headers=auth) as r:
        assert r.status_code == 200
        raw = "".join(r.iter_text())
    events = [e[6:] for e in raw.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    outer = desk.receipt(last["receipt_id"])
    assert outer["agent"]["name"] == "streamer" and len(outer["agent"]["inner"]) == 1
    assert receipt_row(node, outer["agent"]["inner"][0])["payer"] == outer["agent"]["wallet"]
