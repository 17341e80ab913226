"""/agents: create, list, show, fund, pause and resume agents (docs/agents.md).

Reads are public (an agent's registration is on chain anyway); its wallet's credit is its
owner's (or the operator token's) to read. Writes act for the credential's account
(``http.acting``): the node signs for its own accounts, anyone else gets the prepared
transactions to send from their own key (docs/security.md). Every check runs before anything
is sent: 422 for bad input, 404 for an unknown model or agent, 409 for a name taken or an
agent already paused, 403 for another account's agent. Calls to an agent go through /v1 as
``model: "agent/NAME"``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.http.acting import act, actor
from openledger.http.agents import AgentFields
from openledger.http.bounds import AsField, Limit, Name, Offset
from openledger.http.credentials import Reader, Writer
from openledger.http.deps import NodeDep
from openledger.units import parse_open

router = APIRouter(prefix="/agents", tags=["agents"])


class Signer(BaseModel):
    as_: AsField = None


class CreateBody(Signer, AgentFields):
    pass


class AmountBody(Signer):
    amount: Name = Field(description="OPEN, e.g. '25' or '2.5'")


class PriceBody(Signer):
    price: Name = Field(description="OPEN per call, e.g. '0.05'")


@router.get("")
def list_agents(node: NodeDep, offset: Offset = 0, limit: Limit = 50) -> dict[str, Any]:
    return node.agents.list(offset, limit)


@router.get("/{agent}")
def show_agent(agent: Name, node: NodeDep) -> dict[str, Any]:
    """An agent: owner, model, price, state, configuration, wallet address."""
    return node.agents.get(agent)


@router.get("/{agent}/wallet")
def show_wallet(agent: Name, node: NodeDep, principal: Reader) -> dict[str, Any]:
    """The agent's own account and its inference credit (its owner or the operator)."""
    return node.agents.wallet_for(agent, principal)


@router.post("", status_code=201)
def create_agent(body: CreateBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Register an agent owned by the credential's account."""
    who = actor(node, principal, body.as_)
    plan = node.agents.plan_create(
        body.name, body.config(), price=body.price_wei(), owner=who.address
    )
    return act(node, who, plan)


@router.post("/{agent}/fund")
def fund_agent(agent: Name, body: AmountBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Deposit OPEN into the escrow for the agent's wallet (approve first when short)."""
    who = actor(node, principal, body.as_)
    amount = parse_open(body.amount, field="amount")
    return act(node, who, node.agents.plan_fund(agent, amount, payer=who.address))


@router.put("/{agent}/price")
def set_price(agent: Name, body: PriceBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """The agent's price per call (its owner only)."""
    who = actor(node, principal, body.as_)
    price = parse_open(body.price, field="price")
    return act(node, who, node.agents.plan_set_price(agent, price, owner=who.address))


@router.post("/{agent}/pause")
def pause_agent(agent: Name, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.agents.plan_set_active(agent, False, owner=who.address))


@router.post("/{agent}/resume")
def resume_agent(agent: Name, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.agents.plan_set_active(agent, True, owner=who.address))
