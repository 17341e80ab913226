"""/web/api for agents (docs/agents.md): the list with the signed-in account's wallets'
credit, create, fund, and an agent's activity (its owner's to read: its wallet, the calls
made to it and by it, what its price earned). Writes go through the same ``AgentService``
plans as the CLI and the JSON API, acting for the signed-in account (``web.wallet.act``);
calls to an agent go through the playground's chat (``agent/NAME``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.agents.config import AgentConfig
from openledger.http.bounds import Name, Text
from openledger.http.deps import NodeDep
from openledger.node import Node
from openledger.units import parse_open
from openledger.web.auth import AuthDep, SessionDep
from openledger.web.routes import tile
from openledger.web.wallet import OwnAccount, act

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


class CreateBody(BaseModel):
    name: Name
    model: Name
    price: Name = "0"
    system_prompt: Text = ""
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 64
    retrieval: Annotated[list[Name], Field(max_length=8)] = []
    retrieval_k: int = 3
    calls: Annotated[list[Name], Field(max_length=16)] = []
    spend_cap: Name = "0"


class AmountBody(BaseModel):
    amount: Name


def _own(address: str, owner: str) -> bool:
    return address.lower() == owner.lower()


def _public_ids(node: Node, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "id": node.ledger.public_id(c["seq"])} for c in calls]


@router.get("/agents")
def list_agents(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """Every agent known here; the credit of the wallets of the signed-in account's own."""
    page = node.agents.list(0, 500)
    for a in page["items"]:
        mine = _own(session.address, a["owner"]) and a["wallet"]
        a["credit"] = tile(lambda a=a: node.agents.wallet(a["name"])) if mine else None
    return page


@router.post("/agents", status_code=201)
def create(body: CreateBody, node: NodeDep, auth: AuthDep,
           session: SessionDep) -> dict[str, Any]:  # fmt: skip
    """Register an agent owned by the signed-in account (the node signs for a dev account,
    a wallet sends the registration itself)."""
    config = AgentConfig(
        model=body.model, system_prompt=body.system_prompt, temperature=body.temperature,
        top_p=body.top_p, max_tokens=body.max_tokens, retrieval=tuple(body.retrieval),
        retrieval_k=body.retrieval_k, calls=tuple(body.calls),
        spend_cap=parse_open(body.spend_cap, field="spend_cap"),
    )  # fmt: skip
    price = parse_open(body.price, field="price")
    plan = node.agents.plan_create(body.name, config, price=price, owner=session.address)
    return act(node, auth, session, plan)


@router.post("/agents/{agent}/fund")
def fund(agent: Name, body: AmountBody, node: NodeDep, auth: AuthDep,
         session: SessionDep) -> dict[str, Any]:  # fmt: skip
    """Deposit OPEN from the signed-in account as the agent's wallet's credit (approve first
    when the allowance is short)."""
    amount = parse_open(body.amount, field="amount")
    return act(node, auth, session, node.agents.plan_fund(agent, amount, payer=session.address))


@router.get("/agents/{agent}/activity")
def activity(agent: Name, node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    """The agent's wallet and credit, the latest calls to it and by it (with their receipts'
    public ids) and its earnings: its owner's to read, as its wallet is over the JSON API."""
    doc = node.agents.get(agent)
    if not _own(session.address, doc["owner"]):
        raise auth.principal(session).forbid(f"agent/{doc['name']}'s activity", "read")
    out = node.agents.activity(agent)
    out["calls_to"] = _public_ids(node, out["calls_to"])
    out["calls_made"] = _public_ids(node, out["calls_made"])
    out["wallet"] = tile(lambda: node.agents.wallet(agent)) if doc["wallet"] else None
    return out
