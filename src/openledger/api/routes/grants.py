"""/grants: OpenCircle applications, approval proposals, milestone releases, cancellation;
writes act for the credential's account (``http.acting``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from openledger.http.acting import act, actor
from openledger.http.bounds import AsField, IdPath, Name
from openledger.http.credentials import Writer
from openledger.http.deps import NodeDep
from openledger.units import parse_open

router = APIRouter(prefix="/grants", tags=["grants"])


class Signer(BaseModel):
    as_: AsField = None


class ApplyBody(Signer):
    tier: Name = Field(description="exploration, building or expansion")
    amount: Name = Field(description="OPEN, e.g. '30000'")
    milestones: list[Name] = Field(
        description="OPEN per milestone, summing to the amount", max_length=16
    )
    metadata_uri: Name = ""


@router.get("")
def list_grants(node: NodeDep) -> dict[str, Any]:
    """Every grant, newest first, and the tiers' bounds in wei of OPEN."""
    items = node.grants.grants()
    return {"tiers": node.grants.tiers(), "total": len(items), "items": items}


@router.get("/{grant}")
def show_grant(grant: IdPath, node: NodeDep) -> dict[str, Any]:
    return node.grants.grant(grant)


@router.post("", status_code=201)
def apply(body: ApplyBody, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Apply; a tier's bounds or milestones that do not sum to the amount are a 422."""
    who = actor(node, principal, body.as_)
    milestones = [parse_open(m, field="milestones") for m in body.milestones]
    plan = node.grants.plan_apply(
        who.address,
        body.tier,
        parse_open(body.amount, field="amount"),
        milestones,
        body.metadata_uri,
    )
    return act(node, who, plan)


@router.post("/{grant}/approve", status_code=201)
def approve(grant: IdPath, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Propose approving the grant (returns the proposal)."""
    who = actor(node, principal, body.as_)
    out = act(node, who, node.grants.plan_propose_approval(who.address, grant))
    return out if "wallet" in out else {"proposal": out}


@router.post("/{grant}/release")
def release(grant: IdPath, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    """Release the next milestone (committee), or propose it."""
    who = actor(node, principal, body.as_)
    return act(node, who, node.grants.plan_release(who.address, grant))


@router.post("/{grant}/cancel")
def cancel(grant: IdPath, body: Signer, node: NodeDep, principal: Writer) -> dict[str, Any]:
    who = actor(node, principal, body.as_)
    return act(node, who, node.grants.plan_cancel_grant(who.address, grant))
