"""/governance: proposals, votes, queue, execute, delegation and the governable keys.

Writes act for the credential's account (``http.acting``): the node signs for its own
accounts, anyone else gets the prepared transaction to send from their own key. The same
checks as the CLI run before anything is sent (422 for bad input, 409 for the wrong moment,
with what to do).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.governance.keys import parse_sets
from openledger.http.acting import act, actor
from openledger.http.bounds import AsField, IdPath, Name, Text
from openledger.http.credentials import Writer
from openledger.http.deps import NodeDep

router = APIRouter(prefix="/governance", tags=["governance"])


class Signer(BaseModel):
    as_: AsField = None


class ProposeBody(Signer):
    set: Annotated[dict[Name, Name], Field(max_length=32)] = Field(
        description="KEY: VALUE, as `gov propose --set KEY=VALUE`"
    )
    description: Text = ""


class VoteBody(Signer):
    support: Name = Field(description="for, against or abstain")


class DelegateBody(Signer):
    delegatee: Name


@router.get("")
def overview(node: NodeDep) -> dict[str, Any]:
    """The governance contracts, the treasury and every governable key's value."""
    return node.governance.settings()


@router.get("/proposals")
def list_proposals(node: NodeDep) -> dict[str, Any]:
    """Every proposal, newest first."""
    items = node.governance.list()
    return {"total": len(items), "items": items}


@router.get("/proposals/{proposal}")
def show_proposal(proposal: IdPath, node: NodeDep) -> dict[str, Any]:
    return node.governance.show(proposal)


@router.post("/proposals", status_code=201)
def propose(body: ProposeBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Propose parameter changes; unknown keys and out-of-range values are refused (422)."""
    who = actor(node, principal, body.as_)
    sets = parse_sets([f"{k}={v}" for k, v in body.set.items()])
    return act(node, who, node.governance.plan_propose(who.address, sets, body.description))


@router.post("/proposals/{proposal}/votes")
def vote(proposal: IdPath, body: VoteBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.governance.plan_vote(who.address, proposal, body.support))


@router.post("/proposals/{proposal}/queue")
def queue(proposal: IdPath, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.governance.plan_queue(who.address, proposal))


@router.post("/proposals/{proposal}/execute")
def execute(proposal: IdPath, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.governance.plan_execute(who.address, proposal))


@router.post("/proposals/{proposal}/cancel")
def cancel(proposal: IdPath, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.governance.plan_cancel(who.address, proposal))


@router.post("/delegate")
def delegate(body: DelegateBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    to = node.accounts.resolve(body.delegatee)
    return act(node, who, node.governance.plan_delegate(who.address, to))
