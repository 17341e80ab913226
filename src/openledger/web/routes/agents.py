"""/web/api for agents (docs/agents.md): the list with the signed-in account's wallets'
credit, create, fund, and an agent's activity (its owner's to read: its wallet, the calls
made to it and by it, what its price earned). Writes go through the same ``AgentService``
plans as the CLI and the JSON API, acting for the signed-in account (``web.wallet.act``);
calls to an agent go through the playground's chat (``agent/NAME``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from openledger.http.agents import AgentFields
from openledger.http.bounds import Name
from openledger.http.deps import NodeDep
from openledger.units import parse_open
from openledger.web.routes import tile
from openledger.web.wallet import OwnAccount, WriterDep

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


CreateBody = AgentFields


class AmountBody(BaseModel):
    amount: Name


@router.get("/agents")
def list_agents(node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Every agent known here; the credit of the wallets of the signed-in account's own."""
    page, me = node.agents.list(0, 500), writer.principal
    for a in page["items"]:
        mine = node.agents.shows_wallet(a, me)
        a["credit"] = tile(lambda a=a: node.agents.wallet(a["name"])) if mine else None
    return page


@router.post("/agents", status_code=201)
def create(body: CreateBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Register an agent owned by the signed-in account (the node signs for a dev account,
    a wallet sends the registration itself)."""
    plan = node.agents.plan_create(
        body.name, body.config(), price=body.price_wei(), owner=writer.address
    )
    return writer.act(plan)


@router.post("/agents/{agent}/fund")
def fund(agent: Name, body: AmountBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Deposit OPEN from the signed-in account as the agent's wallet's credit (approve first
    when the allowance is short)."""
    amount = parse_open(body.amount, field="amount")
    return writer.act(node.agents.plan_fund(agent, amount, payer=writer.address))


@router.get("/agents/{agent}/activity")
def activity(agent: Name, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """The agent's wallet and credit, the latest calls to it and by it (with their receipts'
    public ids) and its earnings: its owner's to read, as its wallet is over the JSON API."""
    out = node.agents.activity_for(agent, writer.principal)
    out["wallet"] = tile(lambda: node.agents.wallet(agent)) if out["wallet"] else None
    return out
