"""Agent configurations and the call graph (pure: no chain, no store)."""

from __future__ import annotations

import pytest

from openledger.agents.config import AgentConfig, check_name, parse_callee
from openledger.agents.graph import MAX_DEPTH, call_chain
from openledger.errors import NotFoundError, ValidationError


def test_hash_is_of_the_canonical_json_and_survives_a_round_trip() -> None:
    cfg = AgentConfig(
        model="facts-lora",
        system_prompt="Be brief.",
        temperature=0.7,
        retrieval=("facts",),
        calls=("agent/helper", "other-lora"),
        spend_cap=10**18,
    )
    doc = cfg.to_json()
    assert doc["spend_cap"] == "1000000000000000000" and doc["calls"] == [
        "agent/helper",
        "other-lora",
    ]
    assert AgentConfig.from_json(doc) == cfg and AgentConfig.from_json(doc).hash() == cfg.hash()
    assert cfg.hash().startswith("0x") and len(cfg.hash()) == 66
    assert AgentConfig(model="facts-lora", system_prompt="Be briefer.").hash() != cfg.hash()
    assert [(c.kind, c.name) for c in cfg.callees] == [("agent", "helper"), ("model", "other-lora")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "Bad Name"}, "model"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"system_prompt": "x" * 8_001}, "system_prompt"),
        ({"retrieval": ("facts", "facts")}, "retrieval"),
        ({"retrieval": ("Facts!",)}, "retrieval"),
        ({"retrieval_k": 17}, "retrieval_k"),
        ({"calls": ("m1", "m1")}, "calls"),
        ({"calls": tuple(f"m{i}x" for i in range(9))}, "calls"),
        ({"calls": ("agent/X",)}, "calls"),
        ({"spend_cap": -1}, "spend_cap"),
    ],
)
def test_bad_configurations_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        AgentConfig(**{"model": "facts-lora", **kwargs})
    assert info.value.field == field and info.value.fix


def test_from_json_refuses_unknown_fields_and_bad_amounts() -> None:
    with pytest.raises(ValidationError, match="Unknown configuration field"):
        AgentConfig.from_json({"model": "m1", "prompt": "x"})
    with pytest.raises(ValidationError, match="names no model"):
        AgentConfig.from_json({"system_prompt": "x"})
    with pytest.raises(ValidationError, match="not a wei amount"):
        AgentConfig.from_json({"model": "m1", "spend_cap": "lots"})
    with pytest.raises(ValidationError, match="must be a list"):
        AgentConfig.from_json({"model": "m1", "calls": "m2"})


def test_names() -> None:
    assert check_name("agent/research") == "research" == check_name("research")
    assert parse_callee("agent/helper").kind == "agent" and parse_callee("m1").kind == "model"
    for bad in ("R", "agent/", "a b", "-x", "x" * 64):
        with pytest.raises(ValidationError):
            check_name(bad)


GRAPH = {"a": [], "b": ["a"], "c": ["b"], "d": ["c", "a"], "loop1": ["loop2"], "loop2": ["loop1"]}


def test_call_chain_depth_and_limit() -> None:
    assert call_chain("new", [], GRAPH.get) == ["new"]
    assert call_chain("new", ["a", "c"], GRAPH.get) == ["new", "c", "b", "a"]
    assert MAX_DEPTH == 4
    with pytest.raises(ValidationError, match=r"chain of 5 agents \(new -> d -> c -> b -> a\)"):
        call_chain("new", ["d"], GRAPH.get)


def test_call_chain_refuses_cycles_and_unknown_agents() -> None:
    with pytest.raises(ValidationError, match="would run in a cycle: new -> new") as info:
        call_chain("new", ["new"], GRAPH.get)
    assert info.value.value == "agent/new"
    # a cycle already in the graph (an out-of-date store) is caught at run time
    with pytest.raises(ValidationError, match="loop1 -> loop2 -> loop1"):
        call_chain("x", ["loop1"], GRAPH.get)
    with pytest.raises(NotFoundError, match="agent/ghost, which does not exist"):
        call_chain("new", ["b", "ghost"], GRAPH.get)


def test_audit_checks_the_links_of_agent_calls() -> None:
    from openledger.ledger.settlement.audit import _check_links

    wallet, other = "0x" + "aa" * 20, "0x" + "bb" * 20
    payers = {"0x01": wallet, "0x02": other}
    body = {"agent": {"wallet": wallet, "inner": ["0x01"]}}
    assert _check_links(body, payers) == "" and _check_links({"payer": other}, payers) == ""
    body["agent"]["inner"] = ["0x01", "0x03"]
    assert "0x03, which is not before it" in _check_links(body, payers)
    body["agent"]["inner"] = ["0x02"]
    assert f"paid by {other}, not by the agent's wallet {wallet}" in _check_links(body, payers)
