"""/web/api for governance and OpenCircle grants: the account's votes, delegation, proposals,
votes, queue and execute, grant applications; signed by the signed-in account through
``GovernanceService`` and ``GrantsService``, which check everything before sending."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.governance.keys import parse_sets
from openledger.http.bounds import IdPath, Name, Text
from openledger.http.deps import NodeDep
from openledger.units import parse_open
from openledger.web.auth import SessionDep
from openledger.web.routes import tile
from openledger.web.wallet import OwnAccount, WriterDep

router = APIRouter(prefix="/web/api", tags=["web"], dependencies=OwnAccount)


class DelegateBody(BaseModel):
    delegatee: Name = Field("", description="Address or node account name; empty: yourself")


class ProposeBody(BaseModel):
    set: dict[Name, Name] = Field(max_length=32)
    description: Text = ""


class VoteBody(BaseModel):
    support: Name


class ApplyBody(BaseModel):
    tier: Name
    amount: Name
    milestones: list[Name] = Field(max_length=16)
    metadata_uri: Name = ""


@router.get("/governance/me")
def my_votes(node: NodeDep, session: SessionDep) -> dict[str, Any]:
    """The account's OPEN, its delegated voting power and the chain's clock (countdowns)."""
    token = node.contracts.token
    return {
        "address": session.address,
        "balance": tile(lambda: str(token.balance_of(session.address))),
        "votes": tile(lambda: str(token.get_votes(session.address))),
        "now": tile(lambda: node.client.timestamp()),
    }


@router.post("/governance/delegate")
def delegate(body: DelegateBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    to = node.accounts.resolve(body.delegatee.strip()) if body.delegatee.strip() else None
    return writer.act(node.governance.plan_delegate(writer.address, to or writer.address))


@router.post("/governance/proposals", status_code=201)
def propose(body: ProposeBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    sets = parse_sets([f"{k}={v}" for k, v in body.set.items()])
    return writer.act(node.governance.plan_propose(writer.address, sets, body.description))


@router.post("/governance/proposals/{proposal}/votes")
def vote(proposal: IdPath, body: VoteBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    return writer.act(node.governance.plan_vote(writer.address, proposal, body.support))


@router.post("/governance/proposals/{proposal}/queue")
def queue(proposal: IdPath, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    return writer.act(node.governance.plan_queue(writer.address, proposal))


@router.post("/governance/proposals/{proposal}/execute")
def execute(proposal: IdPath, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    return writer.act(node.governance.plan_execute(writer.address, proposal))


@router.post("/grants", status_code=201)
def apply(body: ApplyBody, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Apply for an OpenCircle grant (tier bounds and milestone sums checked first)."""
    milestones = [parse_open(m.strip(), field="milestones") for m in body.milestones if m.strip()]
    plan = node.grants.plan_apply(
        writer.address,
        body.tier,
        parse_open(body.amount, field="amount"),
        milestones,
        body.metadata_uri,
    )
    return writer.act(plan)


@router.post("/grants/{grant}/approve", status_code=201)
def propose_approval(grant: IdPath, node: NodeDep, writer: WriterDep) -> dict[str, Any]:
    """Propose that governance approves the grant (returns the proposal)."""
    out = writer.act(node.grants.plan_propose_approval(writer.address, grant))
    return out if "wallet" in out else {"proposal": out}
