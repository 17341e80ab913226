"""Agents on the devnet: registration through the service and the CLI, refusals before
anything is sent, pause and resume, the event sync, older deployments."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from openledger.agents.config import AgentConfig
from openledger.agents.service import AgentService, deploy_registry
from openledger.agents.wallet import derive_key
from openledger.chain.deploy import Addresses, Contracts
from openledger.cli.main import main
from openledger.errors import (
    ConflictError,
    ContractNotDeployedError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from openledger.home import init_home
from openledger.node import Node
from openledger.store.factory_tables import JobRow, ModelRow
from openledger.units import OPEN
from tests.conftest import PASSWORD

pytestmark = pytest.mark.anvil


def publish(node: Node, name: str, owner: str = "dave") -> int:
    """A model registered in ModelRegistry and in the node's model table (what `model
    publish` leaves; the agents need its name, id and owner, not its adapter)."""
    signer = node.accounts.signer(owner)
    mid, res = node.contracts.models.register_model(
        signer, "tiny-base", "ab" * 32, [], "00" * 32, 10, 20, f"test:{name}"
    )
    with node.db.session() as s:
        job = JobRow(kind="train", status="succeeded", params={}, result={}, work_dir="")
        s.add(job)
        s.flush()
        s.add(
            ModelRow(
                chain_id=mid,
                name=name,
                owner=signer.address,
                base="tiny-base",
                base_fingerprint="",
                adapter_sha="ab" * 32,
                adapter_dir="",
                snapshot_roots=[],
                index_hash="0x" + "00" * 32,
                price_in=10,
                price_out=20,
                job_id=job.id,
                card={},
                tx_hash=res.tx_hash,
            )
        )
    return mid


def other_node(chain: Node, home: Path) -> Node:
    """A second node home on the same devnet (its own store)."""
    settings = replace(
        chain.settings,
        home=home,
        db_url=f"sqlite:///{home / 'openledger.db'}",
        addresses_file=chain.settings.addresses_path,
    )
    init_home(settings, PASSWORD)
    return Node(settings, password_source=lambda: PASSWORD)


def nonce(node: Node, who: str) -> int:
    return node.client.w3.eth.get_transaction_count(node.accounts.address(who))


def test_create_show_list_pause_resume(dnode: Node) -> None:
    m1, m2 = publish(dnode, "m1"), publish(dnode, "m2")
    alice = dnode.accounts.signer("alice")
    cfg = AgentConfig(
        model="m1",
        system_prompt="Answer in one sentence.",
        temperature=0.5,
        calls=("m2",),
        spend_cap=2 * OPEN,
    )
    helper = dnode.agents.create("helper", cfg, price=OPEN // 100, signer=alice)
    assert (helper["name"], helper["model"], helper["model_id"], helper["owner"]) == (
        "helper",
        "m1",
        m1,
        alice.address,
    )
    assert helper["price"] == str(OPEN // 100) and helper["active"] and helper["depth"] == 1
    assert helper["config"] == cfg.to_json() and helper["config_hash"] == cfg.hash()
    assert helper["callee_models"] == [m2] and helper["callee_agents"] == []
    on_chain = dnode.contracts.agents.agent(helper["id"])
    assert ("0x" + on_chain.config_hash.hex(), on_chain.model_id, on_chain.owner) == (
        cfg.hash(),
        m1,
        alice.address,
    )
    assert dnode.contracts.agents.callees(helper["id"]) == ([], [m2])
    # its own wallet: derived from the operator's key, kept as a keystore in the home
    operator = dnode.accounts.signer("operator")
    key = derive_key(bytes(operator.key), dnode.settings.chain_id, helper["id"])
    assert helper["wallet"] == Account.from_key(key).address
    assert dnode.agents.wallets.path(helper["id"]).is_file()
    assert dnode.agents.wallets.signer(helper["id"]).address == helper["wallet"]
    assert key != derive_key(bytes(operator.key), dnode.settings.chain_id, helper["id"] + 1)
    assert key != derive_key(bytes(operator.key), 1, helper["id"])

    research = dnode.agents.create(
        "agent/research",
        AgentConfig(model="m2", calls=("agent/helper", "m1")),
        price=0,
        signer=dnode.accounts.signer("bob"),
    )
    assert research["depth"] == 2 and research["callee_agents"] == [helper["id"]]
    assert dnode.agents.get("agent/research") == research == dnode.agents.get(research["id"])
    assert dnode.agents.call_chain("research") == ["research", "helper"]
    page = dnode.agents.list()
    assert page["total"] == 2 and [a["name"] for a in page["items"]] == ["helper", "research"]

    before = nonce(dnode, "bob")
    with pytest.raises(ForbiddenError, match="Only the owner of agent 'helper'") as info:
        dnode.agents.set_active("helper", False, signer=dnode.accounts.signer("bob"))
    assert info.value.field == "account" and nonce(dnode, "bob") == before
    assert dnode.agents.set_active("helper", False, signer=alice)["active"] is False
    assert dnode.contracts.agents.agent(helper["id"]).active is False
    with pytest.raises(ConflictError, match="already paused"):
        dnode.agents.set_active("helper", False, signer=alice)
    assert dnode.agents.set_active("agent/helper", True, signer=alice)["active"] is True
    assert dnode.contracts.agents.agent(helper["id"]).active is True

    before = nonce(dnode, "bob")
    with pytest.raises(ForbiddenError, match="can reprice it"):
        dnode.agents.set_price("helper", 1, signer=dnode.accounts.signer("bob"))
    with pytest.raises(ValidationError, match="not a wei amount"):
        dnode.agents.set_price("helper", -1, signer=alice)
    assert nonce(dnode, "bob") == before
    assert dnode.agents.set_price("helper", 3 * OPEN, signer=alice)["price"] == str(3 * OPEN)
    assert dnode.contracts.agents.agent(helper["id"]).price == 3 * OPEN


def test_fund_the_agents_wallet(dnode: Node) -> None:
    publish(dnode, "m1")
    agents = dnode.agents
    helper = agents.create(
        "helper", AgentConfig(model="m1"), price=0, signer=dnode.accounts.signer("alice")
    )
    assert agents.wallet("helper")["available"] == "0"
    doc = agents.fund("helper", 5 * OPEN, signer=dnode.accounts.signer("alice"))
    assert doc["wallet"] == helper["wallet"] and doc["funded"] == str(5 * OPEN)
    assert doc["available"] == str(5 * OPEN) == doc["deposited"]
    assert dnode.contracts.escrow.balance_of(helper["wallet"]) == 5 * OPEN
    # anyone may top it up (the owner usually does)
    agents.fund("agent/helper", 2 * OPEN, signer=dnode.accounts.signer("erin"))
    assert agents.wallet("helper")["available"] == str(7 * OPEN)
    sent = nonce(dnode, "alice")
    with pytest.raises(ValidationError, match="below the minimum deposit") as info:
        agents.fund("helper", OPEN // 2, signer=dnode.accounts.signer("alice"))
    assert info.value.field == "amount"
    balance = dnode.contracts.token.balance_of(dnode.accounts.address("alice"))
    with pytest.raises(ValidationError, match="less than the"):
        agents.fund("helper", balance + 1, signer=dnode.accounts.signer("alice"))
    with pytest.raises(NotFoundError, match="No agent 'ghost'"):
        agents.fund("ghost", OPEN, signer=dnode.accounts.signer("alice"))
    assert nonce(dnode, "alice") == sent
    assert dnode.contracts.escrow.balance_of(helper["wallet"]) == 7 * OPEN


def test_bad_input_is_refused_before_anything_is_sent(dnode: Node) -> None:
    publish(dnode, "m1")
    alice = dnode.accounts.signer("alice")
    agents = dnode.agents
    prev = None
    for i in range(1, 5):  # a chain of four agents: the deepest the registry takes
        calls = (f"agent/d{prev}",) if prev else ()
        agents.create(f"d{i}", AgentConfig(model="m1", calls=calls), price=0, signer=alice)
        prev = i
    assert agents.get("d4")["depth"] == 4
    count, sent = dnode.contracts.agents.agent_count(), nonce(dnode, "alice")
    cases = [
        (
            "x1",
            AgentConfig(model="ghost"),
            NotFoundError,
            "model",
            "Model 'ghost' is not published",
        ),
        (
            "x2",
            AgentConfig(model="m1", calls=("ghost",)),
            NotFoundError,
            "calls",
            "Model 'ghost' is not published",
        ),
        (
            "x3",
            AgentConfig(model="m1", calls=("agent/ghost",)),
            NotFoundError,
            "calls",
            "agent/ghost, which does not exist",
        ),
        (
            "x4",
            AgentConfig(model="m1", calls=("agent/x4",)),
            ValidationError,
            "calls",
            "would run in a cycle: x4 -> x4",
        ),
        (
            "x5",
            AgentConfig(model="m1", calls=("agent/d4",)),
            ValidationError,
            "calls",
            "chain of 5 agents (x5 -> d4 -> d3 -> d2 -> d1); the limit is 4",
        ),
        ("d1", AgentConfig(model="m1"), ConflictError, "name", "already exists"),
        ("x6", AgentConfig(model="m1", retrieval=("nowhere",)), NotFoundError, None, "nowhere"),
        ("X 7", AgentConfig(model="m1"), ValidationError, "name", "is not allowed"),
    ]
    for name, cfg, error, field, text in cases:
        with pytest.raises(error) as info:
            agents.create(name, cfg, price=0, signer=alice)
        assert text in info.value.message, (name, info.value.message)
        assert info.value.fix, name
        if field is not None:
            assert info.value.field == field, name
    with pytest.raises(ValidationError, match="price"):
        agents.create("x8", AgentConfig(model="m1"), price=-1, signer=alice)
    assert dnode.contracts.agents.agent_count() == count and nonce(dnode, "alice") == sent
    assert agents.list()["total"] == 4


def test_the_sync_brings_agents_registered_elsewhere(
    dnode: Node, chain: Node, tmp_path: Path
) -> None:
    m1 = publish(dnode, "m1")
    cfg = AgentConfig(model="m1", system_prompt="hi")
    created = dnode.agents.create("helper", cfg, price=3, signer=dnode.accounts.signer("alice"))
    other = other_node(chain, tmp_path / "other")
    try:
        other.sync_chain()
        seen = other.agents.get("helper")
        assert seen["config"] is None and seen["model"] is None  # unknown on that node
        assert seen["wallet"] is None  # its wallet is the creating node's
        with pytest.raises(ConflictError, match="has no wallet on this node"):
            other.agents.fund("helper", OPEN, signer=other.accounts.signer("alice"))
        assert (seen["id"], seen["model_id"], seen["config_hash"], seen["price"]) == (
            created["id"],
            m1,
            cfg.hash(),
            "3",
        )
        registry = dnode.contracts.agents
        alice = dnode.accounts.signer("alice")
        registry.set_price(alice, created["id"], 7)
        registry.set_active(alice, created["id"], False)
        registry.transfer_agent(alice, created["id"], dnode.accounts.address("bob"))
        other.sync_chain()
        seen = other.agents.get("helper")
        assert (seen["price"], seen["active"], seen["owner"]) == (
            "7",
            False,
            dnode.accounts.address("bob"),
        )
        # the creating node keeps its configuration through its own sync of the same events
        dnode.sync_chain()
        mine = dnode.agents.get("helper")
        assert mine["config"] == cfg.to_json() and mine["price"] == "7"
        registry.set_config(dnode.accounts.signer("bob"), created["id"], "11" * 32)
        dnode.sync_chain()
        mine = dnode.agents.get("helper")
        assert mine["config_hash"] == "0x" + "11" * 32 and mine["config"] is None
    finally:
        other.close()


def test_a_deployment_made_before_agents(chain: Node, tmp_path: Path) -> None:
    full = Addresses.load(chain.settings.addresses_path)
    path = tmp_path / "addresses.json"
    replace(full, contracts={k: v for k, v in full.contracts.items() if k != "AgentRegistry"}).save(
        path
    )
    old = Contracts(chain.client, Addresses.load(path))
    assert old.agents is None and all(b.name != "AgentRegistry" for b in old.all())
    service = AgentService(chain.db, lambda: old, chain.models)
    with pytest.raises(ContractNotDeployedError, match="no AgentRegistry") as info:
        service.registry()
    assert "deploy the AgentRegistry" in info.value.fix
    op = chain.accounts.signer("operator")
    address = deploy_registry(chain.client, op, path)
    assert address is not None and deploy_registry(chain.client, op, path) is None
    new = Contracts(chain.client, Addresses.load(path))
    assert new.agents.address == address and new.agents.agent_count() == 0
    assert new.agents.contract.functions.modelRegistry().call() == new.models.address


@pytest.fixture
def cli_home(chain: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Node:
    node = other_node(chain, tmp_path / "cli")
    monkeypatch.setenv("OPENLEDGER_HOME", str(node.settings.home))
    monkeypatch.setenv("OPENLEDGER_CHAIN_PORT", str(chain.settings.chain_port))
    monkeypatch.setenv("OPENLEDGER_ADDRESSES", str(chain.settings.addresses_path))
    monkeypatch.setenv("OPENLEDGER_PASSWORD", PASSWORD)
    yield node
    node.close()


def test_cli(cli_home: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish(cli_home, "m1")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are a careful research assistant.", encoding="utf-8")
    assert (
        main(
            [
                "agent",
                "create",
                "research",
                "--model",
                "m1",
                "--price",
                "0.25",
                "--system-prompt-file",
                str(prompt),
                "--temperature",
                "0.3",
                "--spend-cap",
                "5",
                "--as",
                "alice",
            ]
        )
        == 0
    )
    assert "agent/research registered on chain as #" in capsys.readouterr().out
    assert main(["agent", "show", "agent/research", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["price"] == str(OPEN // 4) and doc["config"]["spend_cap"] == str(5 * OPEN)
    assert doc["config"]["system_prompt"] == "You are a careful research assistant."
    assert main(["agent", "show", "research"]) == 0
    text = capsys.readouterr().out
    assert "active" in text and "0.25" in text and "careful research" in text
    assert main(["agent", "list"]) == 0
    assert "agent/research" in capsys.readouterr().out
    assert main(["agent", "pause", "research", "--as", "bob"]) != 0
    err = capsys.readouterr().err
    assert "error: --as: Only the owner" in err and "fix: act as" in err and "Traceback" not in err
    assert main(["agent", "fund", "research", "3", "--as", "alice"]) == 0
    assert "funded with 3 OPEN; 3 OPEN of credit available" in capsys.readouterr().out
    assert main(["agent", "show", "research"]) == 0
    assert f"wallet {doc['wallet']}: 3 OPEN of credit available" in capsys.readouterr().out
    assert main(["agent", "price", "research", "0.5", "--as", "alice"]) == 0
    assert "agent/research now costs 0.5 OPEN per call" in capsys.readouterr().out
    assert main(["agent", "pause", "research", "--as", "alice"]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["agent", "create", "r2", "--model", "nope", "--as", "alice"]) != 0
    err = capsys.readouterr().err
    assert "Model 'nope' is not published" in err and "publish it first" in err
    assert main(["agent", "deploy", "--as", "operator"]) == 0
    assert "already deployed" in capsys.readouterr().out
