"""The call graph of agents: depth and cycles (pure; docs/agents.md).

AgentRegistry refuses a registration whose chain of agent calls is deeper than its
``MAX_DEPTH`` and, since callees must exist first, can never record a cycle. The node checks
the same before it sends anything (so a refused agent costs no gas and gets an error naming
the fix) and again before every run, over the configurations it holds.
"""

from __future__ import annotations

from collections.abc import Callable

from openledger.errors import NotFoundError, ValidationError

MAX_DEPTH = 4  # AgentRegistry.MAX_DEPTH: the agent itself and up to 3 agents below it

#: agent name -> the names of the agents it may call (None: no such agent)
Lookup = Callable[[str], "list[str] | None"]


def call_chain(
    name: str, agent_callees: list[str], lookup: Lookup, max_depth: int = MAX_DEPTH
) -> list[str]:
    """The deepest chain of agent calls starting at ``name`` (``name`` first) when ``name``
    calls ``agent_callees``; raises on a cycle, an unknown agent or a chain deeper than
    ``max_depth``."""

    def deepest(agent: str, callees: list[str], path: list[str]) -> list[str]:
        best = [agent]
        for callee in callees:
            full = [*path, agent]
            if callee in full:
                cycle = " -> ".join([*full[full.index(callee) :], callee])
                raise ValidationError(
                    f"The calls of agent {name!r} would run in a cycle: {cycle}.",
                    field="calls",
                    value=f"agent/{callee}",
                    fix=f"remove agent/{callee} from the calls, or call the model it runs instead.",
                )
            below = lookup(callee)
            if below is None:
                raise NotFoundError(
                    f"Agent {name!r} calls agent/{callee}, which does not exist.",
                    field="calls",
                    value=f"agent/{callee}",
                    fix="create that agent first, or drop it from the calls.",
                )
            chain = [agent, *deepest(callee, below, [*path, agent])]
            if len(chain) > len(best):
                best = chain
        return best

    chain = deepest(name, list(agent_callees), [])
    if len(chain) > max_depth:
        raise ValidationError(
            f"Agent {name!r} starts a chain of {len(chain)} agents "
            f"({' -> '.join(chain)}); the limit is {max_depth}.",
            field="calls",
            value=f"agent/{chain[1]}",
            fix="call an agent with fewer agents below it, or call its model directly.",
        )
    return chain
