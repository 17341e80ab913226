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
from openledger.web.wallet import PendingDep, act

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
def delegate(body: DelegateBody, node: NodeDep, auth: AuthDep, session: SessionDep,
             pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    to = node.accounts.resolve(body.delegatee.strip()) if body.delegatee.strip() else None
    return act(node.governance.plan_delegate(session.address, to or session.address), auth,
               session, pending)  # fmt: skip


@router.post("/governance/proposals", status_code=201)
def propose(body: ProposeBody, node: NodeDep, auth: AuthDep, session: SessionDep,
            pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    sets = parse_sets([f"{k}={v}" for k, v in body.set.items()])
    return act(node.governance.plan_propose(session.address, sets, body.description), auth,
               session, pending)  # fmt: skip


@router.post("/governance/proposals/{proposal}/votes")
def vote(proposal: int, body: VoteBody, node: NodeDep, auth: AuthDep, session: SessionDep,
         pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    return act(node.governance.plan_vote(session.address, proposal, body.support), auth,
               session, pending)  # fmt: skip


@router.post("/governance/proposals/{proposal}/queue")
def queue(proposal: int, node: NodeDep, auth: AuthDep, session: SessionDep,
          pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    return act(node.governance.plan_queue(session.address, proposal), auth, session, pending)


@router.post("/governance/proposals/{proposal}/execute")
def execute(proposal: int, node: NodeDep, auth: AuthDep, session: SessionDep,
            pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    return act(node.governance.plan_execute(session.address, proposal), auth, session, pending)


@router.post("/grants", status_code=201)
def apply(body: ApplyBody, node: NodeDep, auth: AuthDep, session: SessionDep,
          pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    """Apply for an OpenCircle grant (tier bounds and milestone sums checked first)."""
    milestones = [parse_open(m.strip(), field="milestones") for m in body.milestones if m.strip()]
    plan = node.governance.plan_apply(session.address, body.tier,
                                      parse_open(body.amount, field="amount"), milestones,
                                      body.metadata_uri)  # fmt: skip
    return act(plan, auth, session, pending)


@router.post("/grants/{grant}/approve", status_code=201)
def propose_approval(grant: int, node: NodeDep, auth: AuthDep, session: SessionDep,
                     pending: PendingDep) -> dict[str, Any]:  # fmt: skip
    """Propose that governance approves the grant (returns the proposal)."""
    out = act(node.governance.plan_propose_approval(session.address, grant), auth, session,
              pending)  # fmt: skip
    return out if "wallet" in out else {"proposal": out}
