"""/web/api for governance and OpenCircle grants: the account's votes, delegation, proposals,
votes, queue and execute, grant applications; signed by the signed-in account through
``GovernanceService``, which checks everything before sending."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.api.deps import NodeDep
from openledger.governance.keys import parse_sets
from openledger.units import parse_open
from openledger.web.auth import AuthDep, SessionDep
from openledger.web.routes import tile

router = APIRouter(prefix="/web/api", tags=["web"])


class DelegateBody(BaseModel):
    delegatee: str = Field("", description="Address or node account name; empty: yourself")


class ProposeBody(BaseModel):
    set: dict[str, str]
    description: str = ""


class VoteBody(BaseModel):
    support: str


class ApplyBody(BaseModel):
    tier: str
    amount: str
    milestones: list[str]
    metadata_uri: str = ""


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
def delegate(body: DelegateBody, node: NodeDep, auth: AuthDep, session: SessionDep
             ) -> dict[str, Any]:  # fmt: skip
    to = node.accounts.resolve(body.delegatee.strip()) if body.delegatee.strip() else None
    return node.governance.delegate(auth.signer(session), to or session.address)


@router.post("/governance/proposals", status_code=201)
def propose(body: ProposeBody, node: NodeDep, auth: AuthDep, session: SessionDep
            ) -> dict[str, Any]:  # fmt: skip
    sets = parse_sets([f"{k}={v}" for k, v in body.set.items()])
    return node.governance.propose(auth.signer(session), sets, body.description)


@router.post("/governance/proposals/{proposal}/votes")
def vote(proposal: int, body: VoteBody, node: NodeDep, auth: AuthDep, session: SessionDep
         ) -> dict[str, Any]:  # fmt: skip
    return node.governance.vote(auth.signer(session), proposal, body.support)


@router.post("/governance/proposals/{proposal}/queue")
def queue(proposal: int, node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    return node.governance.queue(auth.signer(session), proposal)


@router.post("/governance/proposals/{proposal}/execute")
def execute(proposal: int, node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    return node.governance.execute(auth.signer(session), proposal)


@router.post("/grants", status_code=201)
def apply(body: ApplyBody, node: NodeDep, auth: AuthDep, session: SessionDep) -> dict[str, Any]:
    """Apply for an OpenCircle grant (tier bounds and milestone sums checked first)."""
    milestones = [parse_open(m.strip(), field="milestones") for m in body.milestones if m.strip()]
    return node.governance.apply(auth.signer(session), body.tier,
                                 parse_open(body.amount, field="amount"), milestones,
                                 body.metadata_uri)  # fmt: skip


@router.post("/grants/{grant}/approve", status_code=201)
def propose_approval(grant: int, node: NodeDep, auth: AuthDep, session: SessionDep
                     ) -> dict[str, Any]:  # fmt: skip
    """Propose that governance approves the grant (returns the proposal)."""
    return {"proposal": node.governance.propose_approval(auth.signer(session), grant)}
