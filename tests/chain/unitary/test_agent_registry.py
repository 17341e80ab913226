"""AgentRegistry: registration against ModelRegistry, callees, the depth limit, names,
owner-only changes and their events."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from .contract_helpers import OPEN, ZERO, events, h


@pytest.fixture
def agents(factories: dict[str, Any], models: Any, system: Any) -> Any:
    with boa.env.prank(system.deployer):
        registry = factories["AgentRegistry"].deploy(models.address)
    with boa.env.prank(system.alice):
        for i in range(3):
            models.registerModel(f"m{i}", h(f"a{i}"), [], h("i"), OPEN, OPEN, "")
    return registry


def register(
    agents: Any,
    who: str,
    name: str,
    *,
    model: int = 1,
    calls: list[int] = (),
    models: list[int] = (),
    price: int = OPEN,
) -> int:
    with boa.env.prank(who):
        return agents.registerAgent(name, model, h(name), price, list(calls), list(models))


def test_register(agents: Any, models: Any, system: Any) -> None:
    assert agents.agentCount() == 0 and agents.modelRegistry() == models.address
    aid = register(agents, system.alice, "helper", model=2, models=[1, 3], price=5 * OPEN)
    (ev,) = events(agents, "AgentRegistered")
    assert (ev.agent_id, ev.owner, ev.model_id, ev.name, ev.config_hash, ev.price, ev.depth) == (
        1,
        system.alice,
        2,
        "helper",
        h("helper"),
        5 * OPEN,
        1,
    )
    assert list(ev.agent_callees) == [] and list(ev.model_callees) == [1, 3]
    assert aid == 1 and agents.agentCount() == 1 and agents.agentIdOf("helper") == 1
    assert agents.agents(1) == (
        system.alice,
        2,
        h("helper"),
        5 * OPEN,
        True,
        1,
        "helper",
        boa.env.timestamp,
    )
    assert agents.getCallees(1) == ([], [1, 3])
    outer = register(agents, system.bob, "outer", calls=[1])
    assert agents.agents(outer)[5] == 2 and agents.getCallees(outer) == ([1], [])
    assert agents.agentIdOf("nobody") == 0


def test_refusals(agents: Any, system: Any) -> None:
    register(agents, system.alice, "a")
    for kwargs, reason in (
        ({"model": 0}, "unknown model"),
        ({"model": 4}, "unknown model"),
        ({"models": [1, 9]}, "unknown callee model"),
        ({"calls": [2]}, "unknown callee agent"),
        ({"calls": [0]}, "unknown callee agent"),
    ):
        with boa.reverts(f"AgentRegistry: {reason}"):
            register(agents, system.bob, "b", **kwargs)
    with boa.reverts("AgentRegistry: name taken"):
        register(agents, system.bob, "a")
    with boa.reverts("AgentRegistry: empty name"):
        register(agents, system.bob, "")
    assert agents.agentCount() == 1


def test_depth_limit(agents: Any, system: Any) -> None:
    assert agents.MAX_DEPTH() == 4
    prev = register(agents, system.alice, "d1")
    for depth in (2, 3, 4):
        prev = register(agents, system.alice, f"d{depth}", calls=[prev, 1])
        assert agents.agents(prev)[5] == depth
    with boa.reverts("AgentRegistry: call depth over the limit"):
        register(agents, system.alice, "d5", calls=[1, prev])
    # a shallow callee next to the deep one does not lower the depth; alone it is fine
    assert agents.agents(register(agents, system.alice, "d2b", calls=[1]))[5] == 2


def test_owner_only_changes(agents: Any, system: Any) -> None:
    aid = register(agents, system.alice, "a")
    for call in (
        lambda: agents.setConfig(aid, h("x")),
        lambda: agents.setPrice(aid, 1),
        lambda: agents.setActive(aid, False),
        lambda: agents.transferAgent(aid, system.bob),
    ):
        with boa.env.prank(system.bob), boa.reverts("AgentRegistry: not the agent owner"):
            call()
    with boa.env.prank(system.alice), boa.reverts("AgentRegistry: unknown agent"):
        agents.setPrice(7, 1)
    with boa.env.prank(system.alice):
        agents.setConfig(aid, h("v2"))
        assert events(agents, "AgentConfigChanged")[0].config_hash == h("v2")
        agents.setPrice(aid, 3 * OPEN)
        assert events(agents, "AgentPriceChanged")[0].price == 3 * OPEN
        agents.setActive(aid, False)
        assert events(agents, "AgentActiveChanged")[0].active is False
        with boa.reverts("AgentRegistry: new owner is the zero address"):
            agents.transferAgent(aid, ZERO)
        agents.transferAgent(aid, system.bob)
        (ev,) = events(agents, "AgentTransferred")
        assert (ev.old_owner, ev.new_owner) == (system.alice, system.bob)
    assert agents.agents(aid)[:5] == (system.bob, 1, h("v2"), 3 * OPEN, False)
    with boa.env.prank(system.bob):
        agents.setActive(aid, True)
    assert agents.agents(aid)[4] is True


def test_constructor_refuses_zero_registry(factories: dict[str, Any]) -> None:
    with boa.reverts("AgentRegistry: model registry is the zero address"):
        factories["AgentRegistry"].deploy(ZERO)
