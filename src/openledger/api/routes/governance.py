"""/governance: proposals, votes, queue, execute, delegation and the governable keys.

Writes name the signing account as ``"as"`` (a named account of this node, as everywhere in
the API); the same checks as the CLI run before anything is sent (422 for bad input, 409 for
the wrong moment, with what to do).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.api.deps import NodeDep
from openledger.governance.keys import parse_sets

router = APIRouter(prefix="/governance", tags=["governance"])


class Signer(BaseModel):
    as_: str = Field(alias="as", default="operator")


class ProposeBody(Signer):
    set: dict[str, str] = Field(description="KEY: VALUE, as `gov propose --set KEY=VALUE`")
    description: str = ""


class VoteBody(Signer):
    support: str = Field(description="for, against or abstain")


class DelegateBody(Signer):
    delegatee: str


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
def show_proposal(proposal: int, node: NodeDep) -> dict[str, Any]:
    return node.governance.show(proposal)


@router.post("/proposals", status_code=201)
def propose(body: ProposeBody, node: NodeDep) -> dict[str, Any]:
    """Propose parameter changes; unknown keys and out-of-range values are refused (422)."""
    sets = parse_sets([f"{k}={v}" for k, v in body.set.items()])
    return node.governance.propose(node.accounts.signer(body.as_), sets, body.description)


@router.post("/proposals/{proposal}/votes")
def vote(proposal: int, body: VoteBody, node: NodeDep) -> dict[str, Any]:
    return node.governance.vote(node.accounts.signer(body.as_), proposal, body.support)


@router.post("/proposals/{proposal}/queue")
def queue(proposal: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    return node.governance.queue(node.accounts.signer(body.as_), proposal)


@router.post("/proposals/{proposal}/execute")
def execute(proposal: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    return node.governance.execute(node.accounts.signer(body.as_), proposal)


@router.post("/proposals/{proposal}/cancel")
def cancel(proposal: int, body: Signer, node: NodeDep) -> dict[str, Any]:
    return node.governance.cancel(node.accounts.signer(body.as_), proposal)


@router.post("/delegate")
def delegate(body: DelegateBody, node: NodeDep) -> dict[str, Any]:
    signer = node.accounts.signer(body.as_)
    return node.governance.delegate(signer, node.accounts.resolve(body.delegatee))
