"""Agents that retrieve from datanets, on the devnet with the real tiny model and the real
embedding model: the passages most similar to the caller's last message reach the prompt
after the system prompt, the receipt names the records they came from, and what cannot be
served (an unknown datanet, one without a snapshot, a priced one the owner does not read
free) is refused before anything is sent or charged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openledger.agents.config import AgentConfig
from openledger.agents.runner import AgentRunner
from openledger.app import create_app
from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.ledger.service import request_hash
from openledger.units import OPEN
from tests.agents.test_serving import (
    MODEL,
    Desk,
    fee,
    publish_model,
    receipt_row,
)
from tests.market import Market

pytestmark = pytest.mark.anvil

SYSTEM = "Answer from the context."
QUESTION = "How long does light from the Sun take to reach the Earth?"
ERIN = "Light from the Sun reaches the Earth in about eight minutes."  # tests/market.py


@pytest.fixture
def desk(market: Market, tiny_base_dir: Path, adapters_dir: Path) -> Iterator[Desk]:
    node = market.node
    node.settings = replace(node.settings, serve_device="cpu", serve_max_batch=8, serve_max_ctx=256)
    publish_model(market, tiny_base_dir, adapters_dir)
    keys = {"grace": node.api_keys.create("grace", "paid")["key"]}
    with TestClient(create_app(node), raise_server_exceptions=False) as client:
        yield Desk(node, client, keys, market)


def reader(k: int = 2, **extra: object) -> AgentConfig:
    return AgentConfig(
        model=MODEL,
        system_prompt=SYSTEM,
        max_tokens=4,
        retrieval=("facts",),
        retrieval_k=k,
        **extra,
    )  # type: ignore[arg-type]


def nonce(desk: Desk, who: str) -> int:
    return desk.node.client.w3.eth.get_transaction_count(desk.market.addr(who))


def test_the_retrieved_records_reach_the_prompt_and_the_receipt(desk: Desk) -> None:
    node, market = desk.node, desk.market
    node.agents.create("reader", reader(), price=OPEN, signer=node.accounts.signer("dave"))
    runner = AgentRunner(node.agents, node.paid)
    msgs = [
        {"role": "user", "content": "Tell me something."},
        {"role": "assistant", "content": "Ask away."},
        {"role": "user", "content": QUESTION},
    ]
    run = runner.prepare(node.agents.resolve("agent/reader"), msgs)
    # the best passage for the last user message is erin's record, first in the context
    assert len(run.passages) == 2 and run.passages[0].text == ERIN
    first = run.passages[0].source
    assert (first.datanet, first.version, first.contribution, first.contributor) == (
        "facts",
        1,
        market.contributions["erin"],
        market.addr("erin"),
    )
    assert run.system_prompt == (
        f"{SYSTEM}\n\nContext:\n[1] {ERIN}\n[2] {' '.join(run.passages[1].text.split())}"
    )
    before = desk.available("grace")
    done = runner.answer(market.user, run, msgs)

    # the model was given the system prompt with the context, then the caller's messages
    given = [{"role": "system", "content": run.system_prompt}, *msgs]
    assert done.prompt_tokens == len(node.serving.encode_chat(given))
    body = desk.receipt(node.ledger.public_id(done.receipt.seq))
    asked = {
        "api": "agent.call",
        "messages": given,
        "max_tokens": 4,
        "temperature": 0.0,
        "seed": None,
        "agent": "agent/reader",
    }
    assert body["request_hash"] == request_hash(market.user, MODEL, asked)
    # the receipt names each record retrieved, so their contributors are traceable
    assert body["agent"]["retrieved"] == [p.source.to_body() for p in run.passages]
    assert body["agent"]["retrieved"][0] == {
        "datanet": "facts",
        "version": 1,
        "record": first.record,
        "part": 0,
        "contribution": market.contributions["erin"],
        "contributor": market.addr("erin"),
    }
    assert int(body["fee"]) == fee(done.prompt_tokens, done.completion_tokens) + OPEN
    assert before - desk.available("grace") == int(body["fee"])
    # the same answer as the model gives to that prompt directly
    direct = node.paid.chat(market.user, MODEL, given, max_tokens=4)
    assert direct.text == done.text

    # without `prepare`, `answer` retrieves itself; k=1 keeps the best passage only
    node.agents.create("one", reader(k=1), price=0, signer=node.accounts.signer("dave"))
    again = runner.answer(market.user, node.agents.resolve("agent/one"), msgs)
    one = desk.receipt(node.ledger.public_id(again.receipt.seq))["agent"]["retrieved"]
    assert one == [first.to_body()]
    assert node.epochs.close()["status"] == "settled" and node.auditor.audit(1).ok


def test_over_v1_it_answers_alone_and_as_a_callee(desk: Desk) -> None:
    node, market = desk.node, desk.market
    dave = node.accounts.signer("dave")
    node.agents.create("reader", reader(), price=5, signer=dave)
    node.agents.create(
        "lead",
        AgentConfig(model=MODEL, max_tokens=3, calls=("agent/reader",)),
        price=0,
        signer=dave,
    )
    node.agents.fund("lead", 2 * OPEN, signer=dave)
    msgs = [{"role": "user", "content": QUESTION}]
    grace = desk.available("grace")
    # called alone on /v1 chat: its passages go into its prompt and its receipt names them
    r = desk.post("/v1/chat/completions", model="agent/reader", messages=msgs)
    assert r.status_code == 200, r.text
    alone = desk.receipt(r.json()["receipt_id"])
    assert alone["agent"]["name"] == "reader" and len(alone["agent"]["retrieved"]) == 2
    assert alone["agent"]["retrieved"][0]["contribution"] == market.contributions["erin"]
    assert desk.available("grace") == grace - int(alone["fee"])
    # /v1 completions has no messages to retrieve for: refused, nothing held
    r = desk.post("/v1/completions", model="agent/reader", prompt=QUESTION)
    assert r.status_code == 400 and "chat requests only" in r.json()["error"]["message"]
    assert desk.available("grace") == grace - int(alone["fee"])
    # as a callee it runs through the agents' runner: it retrieves, paid by lead's wallet
    r = desk.post("/v1/chat/completions", model="agent/lead", messages=msgs)
    assert r.status_code == 200, r.text
    outer = desk.receipt(r.json()["receipt_id"])
    inner = receipt_row(node, outer["agent"]["inner"][0])
    assert inner["payer"] == outer["agent"]["wallet"]
    assert inner["body"]["agent"]["name"] == "reader"
    named = inner["body"]["agent"]["retrieved"]
    assert named[0]["contribution"] == market.contributions["erin"] and len(named) == 2
    assert "retrieved" not in outer["agent"]


def test_what_cannot_be_served_is_refused_at_registration(desk: Desk) -> None:
    node, market = desk.node, desk.market
    acc = node.accounts
    node.datanets.create(
        "unfrozen",
        description="no snapshot yet",
        validators=[acc.address("bob")],
        quorum=1,
        min_stake=10 * OPEN,
        signer=acc.signer("carol"),
    )
    count, sent = node.contracts.agents.agent_count(), nonce(desk, "bob")
    with pytest.raises(NotFoundError) as info:
        node.agents.create(
            "x1", replace(reader(), retrieval=("nowhere",)), price=0, signer=acc.signer("bob")
        )
    assert (info.value.field, info.value.value) == ("retrieval", "nowhere")
    assert "name a datanet of this node" in info.value.fix
    with pytest.raises(ValidationError) as info:
        node.agents.create(
            "x2",
            replace(reader(), retrieval=("facts", "unfrozen")),
            price=0,
            signer=acc.signer("bob"),
        )
    assert (info.value.field, info.value.value) == ("retrieval", "unfrozen")
    assert "has no snapshot" in info.value.message
    assert "take a snapshot" in info.value.fix

    # dave (the datanet's owner) prices exports: an agent would serve the records to anyone
    node.access.plan_set_prices("facts", export=2 * OPEN, train=0, owner=market.addr("dave")).run(
        acc.signer("dave")
    )
    sent = nonce(desk, "bob")
    with pytest.raises(ValidationError) as info:
        node.agents.create("x3", reader(), price=0, signer=acc.signer("bob"))
    assert (info.value.field, info.value.value) == ("retrieval", "facts")
    assert "priced at 2 OPEN per export" in info.value.message
    assert "neither owns facts nor contributed" in info.value.message
    assert "a paid export lets its payer read the data, not serve it" in info.value.fix
    assert node.contracts.agents.agent_count() == count and nonce(desk, "bob") == sent
    # its contributors and its owner read it free, and so may their agents
    node.agents.create("alices", reader(), price=0, signer=acc.signer("alice"))
    node.agents.create("daves", reader(), price=0, signer=acc.signer("dave"))
    assert node.contracts.agents.agent_count() == count + 2


def test_priced_later_or_no_room_refuses_the_call_and_charges_nothing(desk: Desk) -> None:
    node, market = desk.node, desk.market
    acc = node.accounts
    node.agents.create("bobs", reader(), price=0, signer=acc.signer("bob"))
    runner = AgentRunner(node.agents, node.paid)
    grace = desk.available("grace")
    msgs = [{"role": "user", "content": QUESTION}]
    # a conversation that leaves no room for even one passage
    long = [{"role": "user", "content": "octopus " * 200}]
    with pytest.raises(ValidationError, match="with even one") as info:
        runner.answer(market.user, node.agents.resolve("agent/bobs"), long)
    assert info.value.field == "messages"
    node.access.plan_set_prices("facts", export=OPEN, train=0, owner=market.addr("dave")).run(
        acc.signer("dave")
    )
    with pytest.raises(ConflictError) as info:
        runner.answer(market.user, node.agents.resolve("agent/bobs"), msgs)
    assert info.value.field == "retrieval" and "Nothing was charged" in info.value.fix
    assert desk.available("grace") == grace
